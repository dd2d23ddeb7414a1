-- Platform fees per plan: each plan charges a share of every completed order, in basis points
-- (100 = 1 %). Like the plan's limits and features, the rate is copied into the subscription
-- when it starts or changes plan, so editing a plan does not silently change what existing
-- customers bought. The fee itself is computed by fleetfront-domain (`plan::platform_fee`).

ALTER TABLE subscription_plans
    ADD COLUMN platform_fee_bps integer NOT NULL DEFAULT 500
        CHECK (platform_fee_bps BETWEEN 0 AND 10000);
UPDATE subscription_plans SET platform_fee_bps = CASE plan_key
    WHEN 'starter' THEN 500
    WHEN 'growth' THEN 400
    WHEN 'professional' THEN 300
    WHEN 'enterprise' THEN 200
    ELSE platform_fee_bps END;

ALTER TABLE business_subscriptions
    ADD COLUMN platform_fee_bps integer NOT NULL DEFAULT 500
        CHECK (platform_fee_bps BETWEEN 0 AND 10000);
UPDATE business_subscriptions s SET platform_fee_bps = p.platform_fee_bps
  FROM subscription_plans p WHERE p.id = s.plan_id;
