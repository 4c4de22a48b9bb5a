//! The CRI RuntimeService: what the runtime is (version, status, the cgroup driver the kubelet
//! must match), pod sandboxes ([`super::pods`]) and their containers ([`super::containers`]).
//! Streaming, stats, events and the rest answer Unimplemented (see [`super::not_yet`]).

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::Engine;
use k8s_cri::v1;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status};

use super::{containers, not_yet, pods, stats, status_of};

/// The CRI API version berth speaks (the `version` field the kubelet checks).
const KUBE_API_VERSION: &str = "0.1.0";

#[derive(Debug)]
pub struct Runtime {
    engine: Arc<Engine>,
}

impl Runtime {
    pub fn new(engine: Arc<Engine>) -> Self {
        Runtime { engine }
    }
}

fn condition(kind: &str, ready: bool, reason: &str, message: &str) -> v1::RuntimeCondition {
    v1::RuntimeCondition {
        r#type: kind.into(),
        status: ready,
        reason: reason.into(),
        message: message.into(),
    }
}

type Events = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<v1::ContainerEventResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl RuntimeService for Runtime {
    async fn version(
        &self,
        _: Request<v1::VersionRequest>,
    ) -> Result<Response<v1::VersionResponse>, Status> {
        Ok(Response::new(v1::VersionResponse {
            version: KUBE_API_VERSION.into(),
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    /// The runtime is ready once berthd answers; the network is not (no CNI yet), which the
    /// kubelet reports as the node's NetworkReady=false with this reason.
    async fn status(
        &self,
        r: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let conditions = vec![
            condition("RuntimeReady", true, "", ""),
            condition(
                "NetworkReady",
                false,
                "NetworkPluginNotReady",
                "berth's CRI does not set up pod networks (CNI) yet",
            ),
        ];
        let mut info = HashMap::new();
        if r.get_ref().verbose {
            let driver = self.engine.containers.cgroup_driver();
            info.insert(
                "config".to_string(),
                serde_json::json!({
                    "cgroupDriver": driver.name(),
                    "dataRoot": self.engine.data_root,
                })
                .to_string(),
            );
        }
        Ok(Response::new(v1::StatusResponse {
            status: Some(v1::RuntimeStatus { conditions }),
            info,
            runtime_handlers: vec![v1::RuntimeHandler {
                name: String::new(),
                features: Some(v1::RuntimeHandlerFeatures {
                    recursive_read_only_mounts: false,
                    user_namespaces: false,
                }),
            }],
            features: Some(v1::RuntimeFeatures {
                supplemental_groups_policy: false,
            }),
        }))
    }

    /// The cgroup driver berthd was started with, which the kubelet's must match.
    async fn runtime_config(
        &self,
        _: Request<v1::RuntimeConfigRequest>,
    ) -> Result<Response<v1::RuntimeConfigResponse>, Status> {
        let driver = match self.engine.containers.cgroup_driver() {
            berth_engine::cgroups::CgroupDriver::Systemd => v1::CgroupDriver::Systemd,
            berth_engine::cgroups::CgroupDriver::Cgroupfs => v1::CgroupDriver::Cgroupfs,
        };
        Ok(Response::new(v1::RuntimeConfigResponse {
            linux: Some(v1::LinuxRuntimeConfiguration {
                cgroup_driver: driver as i32,
            }),
        }))
    }

    /// The kubelet tells the pod CIDR here; without CNI yet there is nothing to configure.
    async fn update_runtime_config(
        &self,
        r: Request<v1::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<v1::UpdateRuntimeConfigResponse>, Status> {
        let cidr = r
            .get_ref()
            .runtime_config
            .as_ref()
            .and_then(|c| c.network_config.as_ref())
            .map(|n| n.pod_cidr.clone())
            .unwrap_or_default();
        tracing::info!(pod_cidr = %cidr, "CRI runtime config update (no CNI yet: kept in no file)");
        Ok(Response::new(v1::UpdateRuntimeConfigResponse {}))
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<v1::RunPodSandboxRequest>,
    ) -> Result<Response<v1::RunPodSandboxResponse>, Status> {
        let req = r.into_inner();
        if !matches!(req.runtime_handler.as_str(), "" | "runc" | "berth") {
            return Err(Status::invalid_argument(format!(
                "runtime handler {:?} is not configured (berth has the default one)",
                req.runtime_handler
            )));
        }
        let config = pods::config_of(
            req.config
                .ok_or_else(|| Status::invalid_argument("no pod sandbox config"))?,
        )?;
        let id = self.engine.pods.run(config).await.map_err(status_of)?;
        Ok(Response::new(v1::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<v1::StopPodSandboxRequest>,
    ) -> Result<Response<v1::StopPodSandboxResponse>, Status> {
        self.engine
            .pods
            .stop(&r.get_ref().pod_sandbox_id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<v1::RemovePodSandboxRequest>,
    ) -> Result<Response<v1::RemovePodSandboxResponse>, Status> {
        self.engine
            .pods
            .remove(&r.get_ref().pod_sandbox_id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<v1::PodSandboxStatusRequest>,
    ) -> Result<Response<v1::PodSandboxStatusResponse>, Status> {
        let r = r.get_ref();
        Ok(Response::new(pods::status(
            &self.engine,
            &r.pod_sandbox_id,
            r.verbose,
        )?))
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<v1::ListPodSandboxRequest>,
    ) -> Result<Response<v1::ListPodSandboxResponse>, Status> {
        let items = pods::list(&self.engine, r.into_inner().filter);
        Ok(Response::new(v1::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        r: Request<v1::CreateContainerRequest>,
    ) -> Result<Response<v1::CreateContainerResponse>, Status> {
        let req = r.into_inner();
        let config = containers::config_of(
            req.config
                .ok_or_else(|| Status::invalid_argument("no container config"))?,
        )?;
        let id = self
            .engine
            .pods
            .create_container(&req.pod_sandbox_id, config)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        r: Request<v1::StartContainerRequest>,
    ) -> Result<Response<v1::StartContainerResponse>, Status> {
        let (_, c) = self
            .engine
            .pods
            .container(&r.get_ref().container_id)
            .map_err(status_of)?;
        self.engine
            .containers
            .start(&c.id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::StartContainerResponse {}))
    }

    /// The stop signal, then SIGKILL after `timeout` seconds; a stopped or missing container
    /// is no error (the CRI's idempotence).
    async fn stop_container(
        &self,
        r: Request<v1::StopContainerRequest>,
    ) -> Result<Response<v1::StopContainerResponse>, Status> {
        let r = r.get_ref();
        let c = match self.engine.pods.container(&r.container_id) {
            Ok((_, c)) => c,
            Err(e) if e.kind == berth_engine::error::Kind::NotFound => {
                return Ok(Response::new(v1::StopContainerResponse {}));
            }
            Err(e) => return Err(status_of(e)),
        };
        match self
            .engine
            .containers
            .stop(&c.id, None, Some(r.timeout.max(0)))
            .await
        {
            Err(e) if e.kind != berth_engine::error::Kind::NotModified => {
                return Err(status_of(e));
            }
            _ => {}
        }
        Ok(Response::new(v1::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        r: Request<v1::RemoveContainerRequest>,
    ) -> Result<Response<v1::RemoveContainerResponse>, Status> {
        self.engine
            .pods
            .remove_container(&r.get_ref().container_id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        r: Request<v1::ListContainersRequest>,
    ) -> Result<Response<v1::ListContainersResponse>, Status> {
        let containers = containers::list(&self.engine, r.into_inner().filter);
        Ok(Response::new(v1::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        r: Request<v1::ContainerStatusRequest>,
    ) -> Result<Response<v1::ContainerStatusResponse>, Status> {
        let r = r.get_ref();
        Ok(Response::new(containers::status(
            &self.engine,
            &r.container_id,
            r.verbose,
        )?))
    }

    async fn exec_sync(
        &self,
        r: Request<v1::ExecSyncRequest>,
    ) -> Result<Response<v1::ExecSyncResponse>, Status> {
        Ok(Response::new(
            containers::exec_sync(&self.engine, r.into_inner()).await?,
        ))
    }

    async fn container_stats(
        &self,
        r: Request<v1::ContainerStatsRequest>,
    ) -> Result<Response<v1::ContainerStatsResponse>, Status> {
        let (pod, c) = self
            .engine
            .pods
            .container(&r.get_ref().container_id)
            .map_err(status_of)?;
        let stats = stats::of(&self.engine, &pod, &c).await;
        Ok(Response::new(v1::ContainerStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_container_stats(
        &self,
        r: Request<v1::ListContainerStatsRequest>,
    ) -> Result<Response<v1::ListContainerStatsResponse>, Status> {
        let stats = stats::list(&self.engine, r.into_inner().filter).await;
        Ok(Response::new(v1::ListContainerStatsResponse { stats }))
    }

    /// After the kubelet renamed a container's log file: the shim opens it again.
    async fn reopen_container_log(
        &self,
        r: Request<v1::ReopenContainerLogRequest>,
    ) -> Result<Response<v1::ReopenContainerLogResponse>, Status> {
        let (_, c) = self
            .engine
            .pods
            .container(&r.get_ref().container_id)
            .map_err(status_of)?;
        self.engine
            .containers
            .reopen_log(&c.id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::ReopenContainerLogResponse {}))
    }

    /// New CPU and memory limits for a container (the cgroup's, live).
    async fn update_container_resources(
        &self,
        r: Request<v1::UpdateContainerResourcesRequest>,
    ) -> Result<Response<v1::UpdateContainerResourcesResponse>, Status> {
        let r = r.into_inner();
        let (_, c) = self
            .engine
            .pods
            .container(&r.container_id)
            .map_err(status_of)?;
        let res = r.linux.unwrap_or_default();
        let positive = |n: i64| (n > 0).then_some(n);
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        let update = berth_engine::model::ResourceUpdate {
            cpu_shares: positive(res.cpu_shares),
            memory: positive(res.memory_limit_in_bytes),
            memory_swap: positive(res.memory_swap_limit_in_bytes),
            cpu_quota: positive(res.cpu_quota),
            cpu_period: positive(res.cpu_period),
            cpuset_cpus: nonempty(res.cpuset_cpus),
            cpuset_mems: nonempty(res.cpuset_mems),
            ..Default::default()
        };
        self.engine
            .containers
            .update(&c.id, update)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::UpdateContainerResourcesResponse {}))
    }

    type GetContainerEventsStream = Events;

    async fn get_container_events(
        &self,
        _: Request<v1::GetEventsRequest>,
    ) -> Result<Response<Events>, Status> {
        Err(not_yet("GetContainerEvents"))
    }

    async fn exec(
        &self,
        _: Request<v1::ExecRequest>,
    ) -> Result<Response<v1::ExecResponse>, Status> {
        Err(not_yet("Exec"))
    }

    async fn attach(
        &self,
        _: Request<v1::AttachRequest>,
    ) -> Result<Response<v1::AttachResponse>, Status> {
        Err(not_yet("Attach"))
    }

    async fn port_forward(
        &self,
        _: Request<v1::PortForwardRequest>,
    ) -> Result<Response<v1::PortForwardResponse>, Status> {
        Err(not_yet("PortForward"))
    }

    async fn pod_sandbox_stats(
        &self,
        _: Request<v1::PodSandboxStatsRequest>,
    ) -> Result<Response<v1::PodSandboxStatsResponse>, Status> {
        Err(not_yet("PodSandboxStats"))
    }

    async fn list_pod_sandbox_stats(
        &self,
        _: Request<v1::ListPodSandboxStatsRequest>,
    ) -> Result<Response<v1::ListPodSandboxStatsResponse>, Status> {
        Err(not_yet("ListPodSandboxStats"))
    }

    async fn checkpoint_container(
        &self,
        _: Request<v1::CheckpointContainerRequest>,
    ) -> Result<Response<v1::CheckpointContainerResponse>, Status> {
        Err(not_yet("CheckpointContainer"))
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<v1::ListMetricDescriptorsRequest>,
    ) -> Result<Response<v1::ListMetricDescriptorsResponse>, Status> {
        Err(not_yet("ListMetricDescriptors"))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<v1::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<v1::ListPodSandboxMetricsResponse>, Status> {
        Err(not_yet("ListPodSandboxMetrics"))
    }
}
