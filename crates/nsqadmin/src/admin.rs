//! The state every request shares: the current options (swappable through `/config`), the
//! cluster client, the notifier, the history store and the metrics registry.
use std::sync::Arc;

use nsq_daemon::metrics::prometheus_client::registry::Registry;
use nsq_http::RequestCtx;
use parking_lot::RwLock;

use crate::cluster::Cluster;
use crate::history::History;
use crate::notify::{Action, Notification, Notifier};
use crate::options::Options;

pub struct Admin {
    opts: RwLock<Arc<Options>>,
    pub cluster: Cluster,
    pub history: Arc<History>,
    /// Build info and process figures; `/metrics` adds the cluster's at scrape time.
    pub metrics: Registry,
    notifier: Option<Notifier>,
    hostname: String,
}

impl Admin {
    pub fn new(
        opts: Options,
        cluster: Cluster,
        history: Arc<History>,
        notifier: Option<Notifier>,
    ) -> Admin {
        Admin {
            opts: RwLock::new(Arc::new(opts)),
            cluster,
            history,
            metrics: nsq_daemon::metrics::registry("nsqadmin"),
            notifier,
            hostname: nsq_daemon::hostname(),
        }
    }

    pub fn opts(&self) -> Arc<Options> {
        Arc::clone(&self.opts.read())
    }

    pub fn swap_opts(&self, opts: Options) {
        *self.opts.write() = Arc::new(opts);
    }

    /// Whether this request may act: everyone when no admin users are configured, otherwise
    /// only the users named by the ACL header (set by a fronting proxy).
    pub fn is_admin(&self, ctx: &RequestCtx) -> bool {
        let opts = self.opts();
        if opts.admin_users.is_empty() {
            return true;
        }
        let user = ctx
            .headers
            .get(opts.acl_http_header.as_str())
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        opts.admin_users.iter().any(|u| u == user)
    }

    pub fn notify(&self, action: Action, ctx: &RequestCtx) {
        if let Some(n) = &self.notifier {
            n.send(Notification::new(
                action,
                ctx,
                &self.hostname,
                crate::cluster::unix_now(),
            ));
        }
    }
}
