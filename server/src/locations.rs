//! Drivers' live locations: the latest fix of every driver in memory with an H3 index for
//! nearest-driver queries ([`LocationStore`]), and their durable history in `driver_locations`,
//! written in bulk by a background flusher ([`Locations`]).
//!
//! A fix is visible to readers as soon as the ingest request returns: the store is updated in
//! the request, and the rows go to a bounded queue that one task drains into PostgreSQL, one
//! `INSERT … SELECT FROM unnest(…)` per batch (every 250 ms or 1,000 fixes, up to three
//! statements in flight), as the `location_writer` principal. When the queue is full the request is refused with 503 and
//! `Retry-After` rather than dropping fixes silently; the phone keeps them buffered.
//!
//! Duplicates: the store remembers, per driver and device, the highest `seq` it accepted; a fix
//! at or below it is a duplicate (devices number fixes in order and re-send only what failed).
//! The table's primary key `(driver_id, device_id, seq)` with `ON CONFLICT DO NOTHING` is the
//! durable guard, e.g. for a batch re-sent after a restart older than the restore window.
//!
//! At start-up [`Locations::restore`] loads the newest row of every driver received in the
//! last 10 minutes, so tracking survives a restart. [`spawn_retention`] deletes rows older
//! than the retention period in batches.
//!
//! The index: H3 cells at resolution 9 (edge ~174 m, ~0.1 km²) map to the drivers in them. A
//! nearest query walks grid rings outwards from the point's cell and stops once the k-th best
//! distance is below what any unvisited ring could hold, so its cost follows the local density,
//! not the fleet size. At 10,000 drivers over a 30×30 km city that is about one driver per
//! cell, and a k=10 query visits a few dozen cells. Locks are sharded (64 shards for drivers,
//! 64 for cells) so concurrent updates and queries rarely meet.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fleetfront_domain::location::{haversine_m, Fix, RawFix};
use fleetfront_domain::UserId;
use h3o::{CellIndex, LatLng, Resolution};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::db::{set_principal, Db};
use crate::error::Result;

/// A driver is a platform account of kind `driver`.
pub type DriverId = UserId;

const SHARDS: usize = 64;

/// A fast hasher for keys that are already well-mixed numbers (H3 cells, UUIDv7 tails).
#[derive(Default, Clone, Copy)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type Fast = BuildHasherDefault<MixHasher>;

/// A map split into [`SHARDS`] separately locked parts.
type Shards<K, V> = Box<[RwLock<HashMap<K, V, Fast>>]>;

fn shard_of<T: Hash>(key: &T) -> usize {
    let mut h = MixHasher::default();
    key.hash(&mut h);
    // The high bits are the best mixed.
    (h.finish() >> 58) as usize % SHARDS
}

/// The latest fix of a driver.
#[derive(Clone, Copy, Debug)]
struct Latest {
    fix: Fix,
    received_at: DateTime<Utc>,
    cell: CellIndex,
}

#[derive(Default)]
struct DriverState {
    latest: Option<Latest>,
    /// Highest accepted `seq` per device.
    devices: HashMap<Arc<str>, i64>,
}

/// One driver in a cell, with the position that put it there.
#[derive(Clone, Copy)]
struct Member {
    driver: DriverId,
    latitude: f64,
    longitude: f64,
}

/// A nearest-driver answer: the driver, its distance in metres, its latest fix.
pub type Nearby = (DriverId, f64, Fix);

/// Tuning of the index.
#[derive(Clone, Copy, Debug)]
pub struct StoreConfig {
    /// H3 resolution of the cells.
    pub resolution: Resolution,
    /// When a search would visit more cells than this many times the number of indexed
    /// drivers, scanning every driver is cheaper and is done instead (a sparse fleet, or a
    /// point far from everybody).
    pub scan_factor: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            resolution: Resolution::Nine,
            scan_factor: 2,
        }
    }
}

/// The latest position of every driver and a spatial index over them. Thread-safe.
pub struct LocationStore {
    config: StoreConfig,
    drivers: Shards<DriverId, DriverState>,
    cells: Shards<CellIndex, Vec<Member>>,
    indexed: AtomicUsize,
    /// The shortest edge of the cells under each resolution-4 cell (~26 km edge), measured
    /// once: computing a cell's edges costs more than a whole query of the index.
    edges: RwLock<HashMap<CellIndex, f64, Fast>>,
}

impl std::fmt::Debug for LocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocationStore")
            .field("indexed", &self.indexed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for LocationStore {
    fn default() -> Self {
        Self::new(StoreConfig::default())
    }
}

/// What [`LocationStore::accept`] did with a device's batch.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Fixes above the device's highest `seq`, now recorded.
    pub new: Vec<Fix>,
    /// Fixes seen before, ignored.
    pub duplicates: usize,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A panic while holding a guard leaves plain data behind (no invariant spans the guard's
    // critical sections beyond what each statement completes), so a poisoned lock is used as is.
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LocationStore {
    /// An empty store.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            drivers: (0..SHARDS).map(|_| RwLock::default()).collect(),
            cells: (0..SHARDS).map(|_| RwLock::default()).collect(),
            indexed: AtomicUsize::new(0),
            edges: RwLock::default(),
        }
    }

    /// The shortest edge, in metres, of `cell` (whose resolution is the store's), cached per
    /// resolution-4 area. Within such an area cells differ in size by well under the 10%
    /// margin [`Self::nearest`] takes.
    fn shortest_edge_m(&self, cell: CellIndex) -> f64 {
        let area = cell.parent(Resolution::Four).unwrap_or(cell);
        if let Some(edge) = read(&self.edges).get(&area) {
            return *edge;
        }
        let edge = cell
            .edges()
            .map(|e| e.length_m())
            .fold(f64::INFINITY, f64::min);
        write(&self.edges).insert(area, edge);
        edge
    }

    fn cell_of(&self, latitude: f64, longitude: f64) -> Option<CellIndex> {
        LatLng::new(latitude, longitude)
            .ok()
            .map(|ll| ll.to_cell(self.config.resolution))
    }

    /// Records a fix received at `received_at` (see [`Self::accept`] for a device's batch).
    pub fn update(&self, driver: DriverId, fix: Fix, received_at: DateTime<Utc>) {
        let mut shard = write(&self.drivers[shard_of(&driver)]);
        let state = shard.entry(driver).or_default();
        self.set_latest(driver, state, fix, received_at);
    }

    /// Records a device's batch (in `seq` order): fixes above the device's highest `seq` are
    /// new, the rest duplicates. The newest new fix (by recorded time) becomes the driver's
    /// latest position unless a newer one is already known.
    pub fn accept(
        &self,
        driver: DriverId,
        device: &str,
        fixes: &[Fix],
        received_at: DateTime<Utc>,
    ) -> Accepted {
        let mut shard = write(&self.drivers[shard_of(&driver)]);
        let state = shard.entry(driver).or_default();
        let high = state.devices.get(device).copied();
        let new: Vec<Fix> = fixes
            .iter()
            .filter(|f| high.is_none_or(|h| f.seq() > h))
            .copied()
            .collect();
        let duplicates = fixes.len() - new.len();
        if let Some(top) = new.iter().map(Fix::seq).max() {
            match state.devices.get_mut(device) {
                Some(h) => *h = top,
                None => {
                    state.devices.insert(Arc::from(device), top);
                }
            }
        }
        if let Some(newest) = new.iter().max_by_key(|f| f.recorded_at()) {
            self.set_latest(driver, state, *newest, received_at);
        }
        Accepted { new, duplicates }
    }

    /// Remembers `seq` as seen for a device without touching the position (restore).
    fn mark_seen(&self, driver: DriverId, device: &str, seq: i64) {
        let mut shard = write(&self.drivers[shard_of(&driver)]);
        let state = shard.entry(driver).or_default();
        let high = state.devices.entry(Arc::from(device)).or_insert(seq);
        *high = (*high).max(seq);
    }

    fn set_latest(
        &self,
        driver: DriverId,
        state: &mut DriverState,
        fix: Fix,
        received_at: DateTime<Utc>,
    ) {
        if state
            .latest
            .is_some_and(|l| l.fix.recorded_at() > fix.recorded_at())
        {
            return;
        }
        let Some(cell) = self.cell_of(fix.latitude(), fix.longitude()) else {
            return;
        };
        let member = Member {
            driver,
            latitude: fix.latitude(),
            longitude: fix.longitude(),
        };
        let previous = state.latest.replace(Latest {
            fix,
            received_at,
            cell,
        });
        match previous {
            Some(old) if old.cell == cell => {
                let mut cells = write(&self.cells[shard_of(&cell)]);
                let members = cells.entry(cell).or_default();
                match members.iter_mut().find(|m| m.driver == driver) {
                    Some(m) => *m = member,
                    None => members.push(member),
                }
            }
            previous => {
                if let Some(old) = previous {
                    self.unindex(driver, old.cell);
                } else {
                    self.indexed.fetch_add(1, Ordering::Relaxed);
                }
                write(&self.cells[shard_of(&cell)])
                    .entry(cell)
                    .or_default()
                    .push(member);
            }
        }
    }

    fn unindex(&self, driver: DriverId, cell: CellIndex) {
        let mut cells = write(&self.cells[shard_of(&cell)]);
        if let Some(members) = cells.get_mut(&cell) {
            members.retain(|m| m.driver != driver);
            if members.is_empty() {
                cells.remove(&cell);
            }
        }
    }

    /// The driver's latest fix and when it was received.
    pub fn latest(&self, driver: DriverId) -> Option<(Fix, DateTime<Utc>)> {
        read(&self.drivers[shard_of(&driver)])
            .get(&driver)
            .and_then(|s| s.latest)
            .map(|l| (l.fix, l.received_at))
    }

    /// Forgets the driver's position (going offline); the devices' sequence numbers are kept,
    /// so a late re-send is still recognised.
    pub fn remove(&self, driver: DriverId) {
        let mut shard = write(&self.drivers[shard_of(&driver)]);
        if let Some(old) = shard.get_mut(&driver).and_then(|s| s.latest.take()) {
            self.unindex(driver, old.cell);
            self.indexed.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// How many drivers have a position.
    pub fn len(&self) -> usize {
        self.indexed.load(Ordering::Relaxed)
    }

    /// Whether no driver has a position.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k` drivers nearest to the point within `max_distance_m` for which `filter` holds,
    /// nearest first, with their distances (metres) and latest fixes.
    pub fn nearest(
        &self,
        latitude: f64,
        longitude: f64,
        k: usize,
        max_distance_m: f64,
        filter: impl Fn(DriverId) -> bool,
    ) -> Vec<Nearby> {
        let Some(origin) = self.cell_of(latitude, longitude) else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        // Every point of a cell at grid distance n from the origin cell is at least
        // (1.5·n − 2)·edge from the query point (ring n's hexagon has an inradius of 1.5·n·edge
        // around the origin's centre; both the point and the cell reach one edge beyond their
        // centres). The smallest edge of the origin's cells, less 10% for the distortion of
        // neighbouring cells, keeps the bound conservative.
        let edge = self.shortest_edge_m(origin) * 0.9;
        let lower_bound = |n: u32| ((1.5 * f64::from(n) - 2.0) * edge).max(0.0);
        let rings_needed = ((max_distance_m / edge + 2.0) / 1.5).ceil().max(0.0) as u64;
        let cells_needed = 3 * rings_needed * (rings_needed + 1) + 1;
        let mut best: Vec<(f64, DriverId)> = Vec::with_capacity(k + 1);
        let consider = |m: &Member, best: &mut Vec<(f64, DriverId)>| {
            if !filter(m.driver) {
                return;
            }
            let d = haversine_m(latitude, longitude, m.latitude, m.longitude);
            if d > max_distance_m || (best.len() == k && d >= best[k - 1].0) {
                return;
            }
            let at = best.partition_point(|(bd, _)| *bd <= d);
            best.insert(at, (d, m.driver));
            best.truncate(k);
        };
        let mut scratch: Vec<Member> = Vec::new();
        if cells_needed > self.len().saturating_mul(self.config.scan_factor) as u64 {
            for shard in self.cells.iter() {
                scratch.clear();
                scratch.extend(read(shard).values().flatten().copied());
                for m in &scratch {
                    consider(m, &mut best);
                }
            }
        } else {
            let mut ring = 0u32;
            loop {
                let bound = lower_bound(ring);
                if bound > max_distance_m || (best.len() == k && best[k - 1].0 <= bound) {
                    break;
                }
                scratch.clear();
                for cell in origin.grid_ring::<Vec<CellIndex>>(ring) {
                    if let Some(members) = read(&self.cells[shard_of(&cell)]).get(&cell) {
                        scratch.extend_from_slice(members);
                    }
                }
                for m in &scratch {
                    consider(m, &mut best);
                }
                ring += 1;
                if u64::from(ring) > rings_needed {
                    break;
                }
            }
        }
        best.into_iter()
            .filter_map(|(d, driver)| self.latest(driver).map(|(fix, _)| (driver, d, fix)))
            .collect()
    }

    /// Every driver with a position and its latest fix and reception time (tests, tools).
    pub fn snapshot(&self) -> Vec<(DriverId, Fix, DateTime<Utc>)> {
        self.drivers
            .iter()
            .flat_map(|shard| {
                read(shard)
                    .iter()
                    .filter_map(|(d, s)| s.latest.map(|l| (*d, l.fix, l.received_at)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// How long a driver's verified approval is trusted on this instance.
pub const APPROVAL_TTL: Duration = Duration::from_secs(10);

/// Drivers whose approval (account status `active`) was verified moments ago, by session
/// version.
#[derive(Debug, Default)]
pub struct ApprovedDrivers(Mutex<HashMap<UserId, (i64, Instant)>>);

impl ApprovedDrivers {
    /// Whether the driver was verified approved, with this session version, moments ago.
    pub fn get(&self, driver: UserId, session_version: i64) -> bool {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&driver)
            .is_some_and(|(sv, at)| *sv == session_version && at.elapsed() < APPROVAL_TTL)
    }

    /// Remembers a driver verified approved.
    pub fn put(&self, driver: UserId, session_version: i64) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < APPROVAL_TTL);
        }
        map.insert(driver, (session_version, Instant::now()));
    }
}

/// A fix on its way to `driver_locations`.
#[derive(Clone, Debug)]
pub struct PendingRow {
    driver: DriverId,
    device: Arc<str>,
    fix: Fix,
    received_at: DateTime<Utc>,
}

/// Most rows one request queues (a batch's size limit).
const MAX_BATCH_ROWS: usize = fleetfront_domain::location::MAX_BATCH;

/// Tuning of persistence.
#[derive(Clone, Copy, Debug)]
pub struct PersistConfig {
    /// Batches (one per request) the queue holds before requests are refused with 503.
    pub queue_batches: usize,
    /// Most rows per INSERT.
    pub flush_rows: usize,
    /// Longest a row waits for its INSERT.
    pub flush_every: Duration,
    /// INSERT statements in flight at once.
    pub writers: usize,
}

impl Default for PersistConfig {
    fn default() -> Self {
        Self {
            queue_batches: 8_192,
            flush_rows: 1_000,
            flush_every: Duration::from_millis(250),
            writers: 3,
        }
    }
}

/// Why a batch was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The persistence queue is full (the database is behind); retry shortly.
    #[error("location queue is full")]
    Busy,
}

/// The live locations of the instance: the store plus the queue to PostgreSQL.
pub struct Locations {
    /// The latest positions and their index.
    pub store: LocationStore,
    /// Drivers recently verified approved (the ingest endpoint's check).
    pub approved: ApprovedDrivers,
    queue: mpsc::Sender<Vec<PendingRow>>,
    receiver: Mutex<Option<mpsc::Receiver<Vec<PendingRow>>>>,
    config: PersistConfig,
}

impl std::fmt::Debug for Locations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locations")
            .field("store", &self.store)
            .field(
                "queued_batches",
                &(self.config.queue_batches - self.queue.capacity()),
            )
            .finish()
    }
}

impl Default for Locations {
    fn default() -> Self {
        Self::new(StoreConfig::default(), PersistConfig::default())
    }
}

/// How far back the start-up restore looks.
pub const RESTORE_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

#[derive(sqlx::FromRow)]
struct StoredFix {
    driver_id: Uuid,
    device_id: String,
    seq: i64,
    latitude: f64,
    longitude: f64,
    accuracy_m: f64,
    heading_deg: Option<f64>,
    speed_mps: Option<f64>,
    recorded_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
}

impl Locations {
    /// An empty store and queue; nothing is written until [`Self::spawn_flusher`] runs.
    pub fn new(store: StoreConfig, config: PersistConfig) -> Self {
        let (queue, receiver) = mpsc::channel(config.queue_batches.max(1));
        Self {
            store: LocationStore::new(store),
            approved: ApprovedDrivers::default(),
            queue,
            receiver: Mutex::new(Some(receiver)),
            config,
        }
    }

    /// Takes a device's checked batch: updates the store (visible at once) and queues the new
    /// fixes for the database.
    ///
    /// # Errors
    /// [`IngestError::Busy`] when the queue is full; nothing is recorded then.
    pub fn ingest(
        &self,
        driver: DriverId,
        device: &str,
        fixes: &[Fix],
        received_at: DateTime<Utc>,
    ) -> Result<Accepted, IngestError> {
        // Reserve the queue's place first, so a refusal leaves the store untouched and the
        // device's re-send is not mistaken for a duplicate.
        let permit = self.queue.try_reserve().map_err(|_| IngestError::Busy)?;
        let accepted = self.store.accept(driver, device, fixes, received_at);
        if !accepted.new.is_empty() {
            let device: Arc<str> = Arc::from(device);
            permit.send(
                accepted
                    .new
                    .iter()
                    .map(|fix| PendingRow {
                        driver,
                        device: device.clone(),
                        fix: *fix,
                        received_at,
                    })
                    .collect(),
            );
        }
        Ok(accepted)
    }

    /// Starts the task that writes queued fixes to `driver_locations` (once; later calls return
    /// `None`). It stops when the queue's sender (this value) is dropped, after writing what
    /// was queued.
    pub fn spawn_flusher(&self, db: Db) -> Option<JoinHandle<()>> {
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()?;
        Some(tokio::spawn(flush_loop(db, receiver, self.config)))
    }

    /// Loads the newest fix of every driver received within [`RESTORE_WINDOW`] of `now`, and
    /// the highest `seq` of each device in that window, into the store.
    ///
    /// # Errors
    /// Database errors.
    pub async fn restore(&self, db: &Db, now: DateTime<Utc>) -> Result<usize> {
        let since = now - RESTORE_WINDOW;
        let mut tx = db.pool.begin().await?;
        set_principal(&mut tx, "location_keeper", None, None, None).await?;
        let rows: Vec<StoredFix> = sqlx::query_as(
            "SELECT DISTINCT ON (driver_id) driver_id, device_id, seq, latitude, longitude, \
             accuracy_m, heading_deg, speed_mps, recorded_at, received_at \
             FROM driver_locations WHERE received_at > $1 ORDER BY driver_id, recorded_at DESC",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let seqs: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT driver_id, device_id, max(seq) FROM driver_locations WHERE received_at > $1 \
             GROUP BY driver_id, device_id",
        )
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        for (driver, device, seq) in seqs {
            self.store.mark_seen(UserId(driver), &device, seq);
        }
        let mut restored = 0;
        for row in rows {
            let raw = RawFix {
                latitude: row.latitude,
                longitude: row.longitude,
                accuracy_m: row.accuracy_m,
                heading_deg: row.heading_deg,
                speed_mps: row.speed_mps,
                recorded_at: row.recorded_at,
                seq: row.seq,
            };
            // Judged as of its reception, when it was accepted.
            match Fix::parse(raw, row.received_at) {
                Ok(fix) => {
                    self.store
                        .update(UserId(row.driver_id), fix, row.received_at);
                    restored += 1;
                }
                Err(errors) => {
                    tracing::warn!(driver = %row.driver_id, device = %row.device_id, ?errors, "stored fix no longer parses; not restored");
                }
            }
        }
        Ok(restored)
    }
}

async fn flush_loop(db: Db, mut receiver: mpsc::Receiver<Vec<PendingRow>>, config: PersistConfig) {
    // Statements run concurrently (up to `writers`), so one slow INSERT does not hold back the
    // next batch while PostgreSQL has cores to spare; order does not matter (the key dedups).
    let writers = Arc::new(tokio::sync::Semaphore::new(config.writers.max(1)));
    let mut open = true;
    while open {
        let mut rows: Vec<PendingRow> = Vec::with_capacity(config.flush_rows + MAX_BATCH_ROWS);
        match receiver.recv().await {
            Some(batch) => rows.extend(batch),
            None => open = false,
        }
        let deadline = tokio::time::Instant::now() + config.flush_every;
        while open && rows.len() < config.flush_rows {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(batch)) => rows.extend(batch),
                Ok(None) => open = false,
                Err(_) => break,
            }
        }
        if rows.is_empty() {
            continue;
        }
        let Ok(permit) = writers.clone().acquire_owned().await else {
            break;
        };
        let db = db.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut delay = Duration::from_millis(100);
            // The rows stay here until written (meanwhile the queue fills and requests get
            // 503); a database that is down or restarting comes back.
            while let Err(e) = write_rows(&db, &rows).await {
                tracing::error!(error = %e, rows = rows.len(), "could not write driver locations; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
    }
    // The queue is closed: wait for the statements still running.
    let all = u32::try_from(config.writers.max(1)).unwrap_or(u32::MAX);
    let _ = writers.acquire_many(all).await;
}

/// Writes rows in one statement as `location_writer`; rows already stored are skipped.
async fn write_rows(db: &Db, rows: &[PendingRow]) -> Result<()> {
    let mut drivers = Vec::with_capacity(rows.len());
    let mut devices = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    let mut lats = Vec::with_capacity(rows.len());
    let mut lons = Vec::with_capacity(rows.len());
    let mut accuracies = Vec::with_capacity(rows.len());
    let mut headings: Vec<Option<f64>> = Vec::with_capacity(rows.len());
    let mut speeds: Vec<Option<f64>> = Vec::with_capacity(rows.len());
    let mut recorded = Vec::with_capacity(rows.len());
    let mut received = Vec::with_capacity(rows.len());
    for row in rows {
        drivers.push(row.driver.0);
        devices.push(row.device.to_string());
        seqs.push(row.fix.seq());
        lats.push(row.fix.latitude());
        lons.push(row.fix.longitude());
        accuracies.push(row.fix.accuracy_m());
        headings.push(row.fix.heading_deg());
        speeds.push(row.fix.speed_mps());
        recorded.push(row.fix.recorded_at());
        received.push(row.received_at);
    }
    let mut tx = db.pool.begin().await?;
    set_principal(&mut tx, "location_writer", None, None, None).await?;
    sqlx::query(
        "INSERT INTO driver_locations (driver_id, device_id, seq, latitude, longitude, accuracy_m, \
         heading_deg, speed_mps, recorded_at, received_at) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::float8[], $5::float8[], \
         $6::float8[], $7::float8[], $8::float8[], $9::timestamptz[], $10::timestamptz[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(drivers)
    .bind(devices)
    .bind(seqs)
    .bind(lats)
    .bind(lons)
    .bind(accuracies)
    .bind(headings)
    .bind(speeds)
    .bind(recorded)
    .bind(received)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Rows deleted per retention statement.
const PRUNE_BATCH: i64 = 5_000;

/// Deletes rows received before `cutoff`, [`PRUNE_BATCH`] per transaction; returns how many.
///
/// # Errors
/// Database errors (rows deleted by earlier batches stay deleted).
pub async fn prune(db: &Db, cutoff: DateTime<Utc>) -> Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = db.pool.begin().await?;
        set_principal(&mut tx, "location_keeper", None, None, None).await?;
        let deleted = sqlx::query(
            "DELETE FROM driver_locations WHERE ctid = ANY (ARRAY(\
             SELECT ctid FROM driver_locations WHERE received_at < $1 LIMIT $2))",
        )
        .bind(cutoff)
        .bind(PRUNE_BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        total += deleted;
        if deleted < PRUNE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Starts the retention task: every `every`, rows older than `retention` (by reception) are
/// deleted.
pub fn spawn_retention(
    app: crate::app::App,
    retention: chrono::Duration,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let cutoff = app.clock.now() - retention;
            match prune(&app.db, cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "old driver locations deleted"),
                Err(e) => tracing::error!(error = %e, "could not delete old driver locations"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn fix(seq: i64, latitude: f64, longitude: f64, secs: i64) -> Fix {
        Fix::parse(
            RawFix {
                latitude,
                longitude,
                accuracy_m: 5.0,
                heading_deg: None,
                speed_mps: None,
                recorded_at: now() - chrono::Duration::seconds(600 - secs),
                seq,
            },
            now(),
        )
        .unwrap()
    }

    fn driver(n: u128) -> DriverId {
        UserId(Uuid::from_u128(n))
    }

    #[test]
    fn update_latest_remove() {
        let store = LocationStore::default();
        store.update(driver(1), fix(1, 60.17, 24.94, 0), now());
        store.update(driver(2), fix(1, 60.18, 24.94, 0), now());
        assert_eq!(store.len(), 2);
        // Moving across town moves the driver between cells.
        store.update(driver(1), fix(2, 60.20, 25.00, 10), now());
        assert_eq!(store.latest(driver(1)).unwrap().0.seq(), 2);
        let near = store.nearest(60.20, 25.00, 1, 1_000.0, |_| true);
        assert_eq!(near[0].0, driver(1));
        assert!(near[0].1 < 1.0);
        // An older fix does not replace a newer one.
        store.update(driver(1), fix(0, 60.17, 24.94, 5), now());
        assert_eq!(store.latest(driver(1)).unwrap().0.seq(), 2);
        store.remove(driver(1));
        assert_eq!(store.len(), 1);
        assert!(store.latest(driver(1)).is_none());
        assert!(store.nearest(60.20, 25.00, 5, 1_000.0, |_| true).is_empty());
        let all = store.nearest(60.20, 25.00, 5, 50_000.0, |_| true);
        assert_eq!(all.len(), 1);
        assert!(store
            .nearest(60.20, 25.00, 5, 50_000.0, |d| d != driver(2))
            .is_empty());
    }

    #[test]
    fn duplicates_by_device_seq() {
        let store = LocationStore::default();
        let batch = [fix(1, 60.17, 24.94, 0), fix(2, 60.1701, 24.94, 1)];
        let a = store.accept(driver(1), "phone", &batch, now());
        assert_eq!((a.new.len(), a.duplicates), (2, 0));
        let a = store.accept(driver(1), "phone", &batch, now());
        assert_eq!((a.new.len(), a.duplicates), (0, 2));
        // Another device numbers its own fixes.
        let a = store.accept(driver(1), "tablet", &batch, now());
        assert_eq!((a.new.len(), a.duplicates), (2, 0));
        let a = store.accept(
            driver(1),
            "phone",
            &[fix(2, 60.17, 24.94, 2), fix(3, 60.17, 24.94, 3)],
            now(),
        );
        assert_eq!((a.new.len(), a.duplicates), (1, 1));
        assert_eq!(store.latest(driver(1)).unwrap().0.seq(), 3);
    }

    #[test]
    fn full_queue_refuses_without_recording() {
        let locations = Locations::new(
            StoreConfig::default(),
            PersistConfig {
                queue_batches: 1,
                ..PersistConfig::default()
            },
        );
        let first = [fix(1, 60.17, 24.94, 0)];
        assert!(locations.ingest(driver(1), "p", &first, now()).is_ok());
        let second = [fix(2, 60.17, 24.94, 1)];
        assert!(matches!(
            locations.ingest(driver(1), "p", &second, now()),
            Err(IngestError::Busy)
        ));
        assert_eq!(locations.store.latest(driver(1)).unwrap().0.seq(), 1);
    }

    fn brute(
        points: &[(f64, f64)],
        lat: f64,
        lon: f64,
        k: usize,
        max: f64,
        keep: impl Fn(usize) -> bool,
    ) -> Vec<f64> {
        let mut d: Vec<f64> = points
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, (a, b))| haversine_m(lat, lon, *a, *b))
            .filter(|d| *d <= max)
            .collect();
        d.sort_by(f64::total_cmp);
        d.truncate(k);
        d
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn nearest_matches_brute_force(
            points in proptest::collection::vec((60.0f64..60.27, 24.7f64..25.25), 1..400),
            query in (59.98f64..60.29, 24.68f64..25.27),
            k in 1usize..12,
            max in 100.0f64..12_000.0,
            odd_only in any::<bool>(),
        ) {
            // Ring search only (no fall-back to scanning), to test the ring bound.
            let store = LocationStore::new(StoreConfig { scan_factor: usize::MAX / 1_000_000, ..StoreConfig::default() });
            for (i, (lat, lon)) in points.iter().enumerate() {
                store.update(driver(i as u128), fix(1, *lat, *lon, 0), now());
            }
            let keep = |i: usize| !odd_only || i % 2 == 1;
            let got = store.nearest(query.0, query.1, k, max, |d| keep(d.0.as_u128() as usize));
            let expected = brute(&points, query.0, query.1, k, max, keep);
            let got_d: Vec<f64> = got.iter().map(|g| g.1).collect();
            prop_assert_eq!(got_d, expected.clone());
            // And the scanning fall-back agrees.
            let scan = LocationStore::new(StoreConfig { scan_factor: 0, ..StoreConfig::default() });
            for (i, (lat, lon)) in points.iter().enumerate() {
                scan.update(driver(i as u128), fix(1, *lat, *lon, 0), now());
            }
            let got: Vec<f64> = scan.nearest(query.0, query.1, k, max, |d| keep(d.0.as_u128() as usize)).iter().map(|g| g.1).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
