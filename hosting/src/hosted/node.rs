//! [`Hosted`] as the node the cluster's heartbeat and job runner work for.

use std::sync::Arc;

use crate::hosted::Hosted;
use gitvista_store::Store;

/// The node the cluster's heartbeat and job runner work for.
impl gitvista_cluster::Node for Hosted {
    fn store(&self) -> &Store {
        &self.store
    }

    fn fences(&self) -> &gitvista_cluster::Fences {
        &self.fences
    }

    fn presence(&self) -> &gitvista_cluster::presence::Presence {
        &self.presence
    }

    async fn report(&self) -> gitvista_cluster::NodeReport {
        let sessions = self
            .supervisor
            .send(gitvista_actors::supervisor::Inspect)
            .await
            .unwrap_or_default();
        let viewers: usize = sessions.iter().map(|(_, i)| i.viewers).sum();
        gitvista_cluster::NodeReport {
            id: self.node_id.clone(),
            role: self.role,
            internal_addr: self.config.cluster.internal_addr.map(|a| a.to_string()),
            free_bytes: if self.role.runs_git() {
                self.free_bytes().min(i64::MAX as u64) as i64
            } else {
                0
            },
            sessions: sessions.len() as i32,
            viewers: viewers as i32,
            place: self.config.cluster.regions.place.clone(),
        }
    }

    fn has_room_to_clone(&self) -> bool {
        Hosted::has_room_to_clone(self)
    }

    async fn run_job(
        self: &Arc<Self>,
        claimed: &gitvista_store::jobs::Claimed,
    ) -> Result<(), String> {
        Hosted::run_job(self, claimed).await
    }

    async fn moving(self: &Arc<Self>, ids: &[String]) {
        Hosted::moving(self, ids).await;
    }

    fn wake_jobs(&self) {
        Hosted::wake_jobs(self);
    }

    async fn let_go(self: &Arc<Self>, id: &str) {
        Hosted::let_go(self, id).await;
    }
}
