// Renders each overlay with `kubectl kustomize` and checks what it would apply:
//  - every object validates against the Kubernetes schema (kubernetes-models);
//  - every Deployment and StatefulSet has readiness and liveness probes, resource requests and
//    limits, runs as non-root with a read-only root filesystem and no privilege escalation,
//    and is selected by a Service;
//  - every Deployment has a HorizontalPodAutoscaler, a PodDisruptionBudget and a NetworkPolicy;
//  - every pod (Jobs and CronJobs too) runs a pinned image tag (never latest), as non-root, with
//    memory requests and limits and a read-only root filesystem;
//  - the gateway is reached only through its HTTP/2 edge: every Service port selecting the
//    gateway's pods targets a port of the pod's `edge` container (HAProxy with the kp-edge
//    ConfigMap), and the gateway container listens on the pod's loopback (KP_HOST=127.0.0.1).
// Usage: node deploy/check.mjs [overlay ...]   (default: dev prod). Exit 1 on any problem.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const overlays = process.argv.length > 2 ? process.argv.slice(2) : ["dev", "prod"];
let problems = 0;
const problem = (overlay, what) => {
  problems++;
  console.error(`${overlay}: ${what}`);
};

async function model(apiVersion, kind) {
  const path = apiVersion.includes("/") ? apiVersion : `v1/${kind}`.replace(`/${kind}`, "");
  const module = await import(`kubernetes-models/${path}/${kind}`);
  return module[kind] ?? module.default;
}

const selects = (selector, labels) =>
  selector && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

for (const overlay of overlays) {
  const rendered = execFileSync("kubectl", ["kustomize", join(here, "k8s", "overlays", overlay)], { encoding: "utf8" });
  const objects = YAML.parseAllDocuments(rendered).map((d) => d.toJSON()).filter(Boolean);
  for (const obj of objects) {
    // Kustomize wraps long base64 values over several lines; the API server ignores the breaks.
    if (obj.kind === "Secret" && obj.data) {
      for (const k of Object.keys(obj.data)) obj.data[k] = obj.data[k].replace(/\s+/g, "");
    }
    const Model = await model(obj.apiVersion, obj.kind);
    try {
      new Model(obj).validate();
    } catch (e) {
      problem(overlay, `${obj.kind}/${obj.metadata?.name} does not validate: ${e.message}`);
    }
  }
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  for (const w of [...byKind("Deployment"), ...byKind("StatefulSet")]) {
    const id = `${w.kind}/${w.metadata.name}`;
    const pod = w.spec.template.spec;
    const labels = w.spec.template.metadata.labels;
    for (const c of pod.containers) {
      if (!c.readinessProbe) problem(overlay, `${id} container ${c.name} has no readinessProbe`);
      if (!c.livenessProbe) problem(overlay, `${id} container ${c.name} has no livenessProbe`);
      if (!c.resources?.limits?.cpu || !c.resources?.limits?.memory) problem(overlay, `${id} ${c.name} has no cpu/memory limits`);
      if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory) problem(overlay, `${id} ${c.name} has no requests`);
      const sc = c.securityContext ?? {};
      if (sc.readOnlyRootFilesystem !== true) problem(overlay, `${id} ${c.name}: root filesystem not read-only`);
      if (sc.allowPrivilegeEscalation !== false) problem(overlay, `${id} ${c.name}: privilege escalation allowed`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) problem(overlay, `${id} ${c.name}: capabilities not dropped`);
    }
    const runsAsNonRoot = pod.securityContext?.runAsNonRoot === true && (pod.securityContext?.runAsUser ?? 0) > 0;
    if (!runsAsNonRoot) problem(overlay, `${id} does not run as a non-root user`);
    if (!byKind("Service").some((s) => selects(s.spec.selector, labels))) problem(overlay, `${id} has no matching Service`);
    if (w.kind === "Deployment") {
      if (!pod.containers.every((c) => c.readinessProbe?.grpc && c.livenessProbe?.grpc)) {
        problem(overlay, `${id} does not use native gRPC probes`);
      }
      const name = w.metadata.name;
      if (!byKind("HorizontalPodAutoscaler").some((h) => h.spec.scaleTargetRef.name === name)) problem(overlay, `${id} has no HPA`);
      if (!byKind("PodDisruptionBudget").some((p) => selects(p.spec.selector.matchLabels, labels))) problem(overlay, `${id} has no PDB`);
      if (!byKind("NetworkPolicy").some((n) => selects(n.spec.podSelector.matchLabels, labels))) problem(overlay, `${id} has no NetworkPolicy`);
      if ((w.spec.replicas ?? 1) < 2) problem(overlay, `${id} has fewer than 2 replicas`);
    }
  }
  // Every pod (Deployments, StatefulSets, Jobs, CronJobs): a pinned image, non-root, limits, a
  // read-only root filesystem.
  const pods = [
    ...[...byKind("Deployment"), ...byKind("StatefulSet"), ...byKind("Job")].map((w) => [w, w.spec.template.spec]),
    ...byKind("CronJob").map((w) => [w, w.spec.jobTemplate.spec.template.spec]),
  ];
  for (const [w, pod] of pods) {
    const id = `${w.kind}/${w.metadata.name}`;
    for (const c of pod.containers) {
      const tag = c.image.includes(":") ? c.image.slice(c.image.lastIndexOf(":") + 1) : "";
      if (!tag || tag === "latest") problem(overlay, `${id} ${c.name}: image ${c.image} is not pinned to a tag`);
      if (!c.resources?.limits?.memory || !c.resources?.requests?.memory) problem(overlay, `${id} ${c.name} has no memory request/limit`);
      if (c.securityContext?.readOnlyRootFilesystem !== true) problem(overlay, `${id} ${c.name}: root filesystem not read-only`);
    }
    if (pod.securityContext?.runAsNonRoot !== true) problem(overlay, `${id} does not run as non-root`);
  }
  // The gateway behind its edge: clients reach the edge's ports only, the gateway listens on loopback.
  for (const w of byKind("Deployment").filter((d) => d.metadata.name === "kp-gateway")) {
    const pod = w.spec.template.spec;
    const labels = w.spec.template.metadata.labels;
    const edge = pod.containers.find((c) => c.name === "edge");
    const gateway = pod.containers.find((c) => c.name === "gateway");
    if (!edge) {
      problem(overlay, "Deployment/kp-gateway has no edge container");
      continue;
    }
    if (!(edge.command ?? []).some((a) => /(^|\/)haproxy$/.test(a))) problem(overlay, "Deployment/kp-gateway: the edge container does not run haproxy");
    const edgeConfig = (pod.volumes ?? []).find((v) => v.configMap?.name?.startsWith("kp-edge"));
    if (!edgeConfig || !byKind("ConfigMap").some((c) => c.metadata.name === edgeConfig.configMap.name)) {
      problem(overlay, "Deployment/kp-gateway: the edge's ConfigMap (kp-edge) is not mounted or not rendered");
    } else if (!(edge.volumeMounts ?? []).some((m) => m.name === edgeConfig.name)) {
      problem(overlay, "Deployment/kp-gateway: the edge container does not mount its configuration");
    }
    const host = (gateway?.env ?? []).find((e) => e.name === "KP_HOST")?.value;
    if (host !== "127.0.0.1") problem(overlay, `Deployment/kp-gateway: the gateway listens on ${host ?? "every address"}, not 127.0.0.1`);
    if ((gateway?.ports ?? []).length > 0) problem(overlay, "Deployment/kp-gateway: the gateway container declares ports (the edge owns them)");
    const edgePorts = new Map((edge.ports ?? []).map((p) => [p.name, p.containerPort]));
    for (const svc of byKind("Service").filter((s) => selects(s.spec.selector, labels))) {
      for (const port of svc.spec.ports) {
        const target = port.targetPort ?? port.port;
        if (!(typeof target === "string" ? edgePorts.has(target) : [...edgePorts.values()].includes(target))) {
          problem(overlay, `Service/${svc.metadata.name} port ${port.name} targets ${target}, not a port of the edge container`);
        }
      }
    }
  }
  console.log(`${overlay}: ${objects.length} objects checked`);
}
if (problems > 0) {
  console.error(`${problems} problem(s)`);
  process.exit(1);
}
console.log("manifests OK");
