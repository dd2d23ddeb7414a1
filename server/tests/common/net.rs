//! The app on a real TCP port, for tests of HTTP clients (fleetfront-core): the network can be
//! cut (the listener and every open connection go away) and come back on the same address, and
//! the app behind it can be swapped (a server restart).

use std::net::SocketAddr;

use axum::Router;
use tokio::task::JoinHandle;

/// An app served on `127.0.0.1:<port>`.
pub struct Served {
    /// The base URL clients use.
    pub url: String,
    addr: SocketAddr,
    router: Router,
    task: Option<JoinHandle<()>>,
}

impl Served {
    /// Serves `router` on a free port.
    pub async fn start(router: Router) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut served = Served {
            url: format!("http://{addr}"),
            addr,
            router,
            task: None,
        };
        served.spawn(listener);
        served
    }

    fn spawn(&mut self, listener: tokio::net::TcpListener) {
        let service = self
            .router
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, service).await;
        }));
    }

    /// Cuts the network: the listener closes and open connections break.
    pub async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Brings the network back on the same address, serving `router` (the same app, or a
    /// restarted one).
    pub async fn resume(&mut self, router: Router) {
        self.cut().await;
        self.router = router;
        // The port was ours a moment ago; on a busy machine binding it again can take a
        // few tries while the old socket closes.
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.spawn(listener);
    }

    /// Swaps the app behind the address (a server restart): served at once when the network
    /// is up, kept for [`Served::resume`] when it is cut.
    pub async fn replace(&mut self, router: Router) {
        if self.is_up() {
            self.resume(router).await;
        } else {
            self.router = router;
        }
    }

    /// The app behind the address.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Whether the network is up.
    pub fn is_up(&self) -> bool {
        self.task.is_some()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
