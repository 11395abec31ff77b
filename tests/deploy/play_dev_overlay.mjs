// Plays the dev overlay for real with `podman kube play`, as far as podman goes, and checks that
// it works: every pod becomes ready through the probes its manifest declares, the seed Job loads
// the seed data, and a client call through the gateway's port returns the Nairobi workshop.
//
// What is test-only here, and why (everything else is the overlay as rendered):
//  - images: the rendered overlay names registry images; they are swapped for the image just
//    built (IMAGE) and, for the data stores, for stand-ins built from Debian's own postgresql-15
//    and redis-server packages (tests/deploy/datastores), since no registry is reachable;
//  - podman kube play runs Deployments, Pods, ConfigMaps and Secrets but not StatefulSets, Jobs
//    or Services: the data stores' StatefulSets are played as Deployments (their volume claims as
//    emptyDir volumes), the seed Job as a Pod, and each Service's name is given to the pods it
//    selects as a DNS alias on a podman network of their own (the same names, resolving to every
//    replica, as a headless Service's do);
//  - the operator's secrets (kp-keys, kp-seed, kp-tls) are made as an operator would: tokens
//    with kp-token from the image, certificates with openssl;
//  - podman 4.3's ways: Secrets are created as podman secrets in the form its secretKeyRef lookup
//    reads; Secret volumes are mounted as ConfigMap volumes with the same files (its Secret
//    volumes crash kube play); containers' ports lists are dropped (it publishes each on the
//    host, where replicas collide; Kubernetes only uses them to name ports).
// HPA, PDB and NetworkPolicy do not map to podman: deploy/check.mjs validates them.
//
// Usage: node tests/deploy/play_dev_overlay.mjs IMAGE POSTGRES_IMAGE REDIS_IMAGE
// Prints each pod's start-to-ready time. Exit status 0 when everything held.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const [image, pgImage, redisImage] = process.argv.slice(2);
if (!image || !pgImage || !redisImage) {
  console.error("usage: play_dev_overlay.mjs IMAGE POSTGRES_IMAGE REDIS_IMAGE");
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const network = `kp-play-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), "kp-play-"));
const played = [];
let secrets = [];
const python = "/usr/bin/python3";
const kpcall = join(root, "tools", "kpcall.py");

const run = (cmd, args, options = {}) => execFileSync(cmd, args, { encoding: "utf8", ...options });
const podman = (...args) => run("podman", args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => console.log(`play: ${msg}`);
let failed = false;
const fail = (msg) => {
  console.error(`play: FAIL: ${msg}`);
  failed = true;
};

function teardown() {
  for (const file of played.reverse()) spawnSync("podman", ["kube", "down", file], { stdio: "ignore" });
  spawnSync("podman", ["network", "rm", "-f", network], { stdio: "ignore" });
  for (const s of secrets ?? []) spawnSync("podman", ["secret", "rm", s.metadata.name], { stdio: "ignore" });
  rmSync(work, { recursive: true, force: true });
}
process.on("exit", teardown);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(1));

// --- Render: the dev overlay with its images swapped for local ones ------------------------------
const overlay = mkdtempSync(join(root, "var", "kp-play-overlay-"));
try {
  const [imageName, imageTag] = [image.slice(0, image.lastIndexOf(":")), image.slice(image.lastIndexOf(":") + 1)];
  const local = (ref) => [ref.slice(0, ref.lastIndexOf(":")), ref.slice(ref.lastIndexOf(":") + 1)];
  writeFileSync(
    join(overlay, "kustomization.yaml"),
    YAML.stringify({
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: [relative(overlay, join(root, "deploy", "k8s", "overlays", "dev"))],
      images: [
        { name: "registry.example.org/khartoum-process", newName: imageName, newTag: imageTag },
        { name: "postgres", newName: local(pgImage)[0], newTag: local(pgImage)[1] },
        { name: "redis", newName: local(redisImage)[0], newTag: local(redisImage)[1] },
      ],
    }),
  );
  var rendered = run("kubectl", ["kustomize", overlay]);
} finally {
  rmSync(overlay, { recursive: true, force: true });
}
const objects = YAML.parseAllDocuments(rendered).map((d) => d.toJSON()).filter(Boolean);
const byKind = (kind) => objects.filter((o) => o.kind === kind);
log(`rendered ${objects.length} objects: ${[...new Set(objects.map((o) => o.kind))].join(", ")}`);

// --- The operator's secrets --------------------------------------------------------------------
const token = (principal, role) => {
  const r = spawnSync("podman", ["run", "--rm", image, "kp-token", `--principal=${principal}`, `--role=${role}`, "--line_only"],
                      { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`kp-token: ${r.stderr}`);
  return { line: r.stdout.trim(), token: r.stderr.trim() };
};
const seed = token("seed-job", "editor");
const reader = token("play-reader", "reader");
run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kp-gateway",
                "-keyout", join(work, "tls.key"), "-out", join(work, "tls.crt")], { stdio: "ignore" });
const b64 = (s) => Buffer.from(s).toString("base64");
const secret = (name, data) => ({ apiVersion: "v1", kind: "Secret", metadata: { name }, type: "Opaque", data });
const supplied = [
  secret("kp-keys", { "keys.txt": b64(`${seed.line}\n${reader.line}\n`) }),
  secret("kp-seed", { token: b64(seed.token) }),
  secret("kp-tls", {
    "tls.crt": b64(readFileSync(join(work, "tls.crt"), "utf8")),
    "tls.key": b64(readFileSync(join(work, "tls.key"), "utf8")),
    "ca.crt": b64(readFileSync(join(work, "tls.crt"), "utf8")),
  }),
];
for (const s of byKind("Secret")) {
  if (s.data) for (const k of Object.keys(s.data)) s.data[k] = s.data[k].replace(/\s+/g, "");
}
// Secrets become podman secrets in the form podman 4.3 reads back for secretKeyRef (a Secret
// played from a file is stored in a form its own env lookup then fails to read). ConfigMaps go
// into every played file.
secrets = [...byKind("Secret"), ...supplied];
for (const s of secrets) {
  const file = join(work, `secret-${s.metadata.name}.json`);
  // For secretKeyRef, podman 4.3 reads a secret as a JSON map of key to base64 value.
  writeFileSync(file, JSON.stringify(s.data));
  spawnSync("podman", ["secret", "rm", s.metadata.name], { stdio: "ignore" });
  podman("secret", "create", s.metadata.name, file);
}
const shared = byKind("ConfigMap");
// podman 4.3's kube play cannot mount Secret volumes (it dereferences a nil secrets manager and
// crashes), so a Secret volume is played as a ConfigMap volume with the same files.
for (const s of secrets) {
  shared.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `secret-volume-${s.metadata.name}` },
                data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")])) });
}
function secretVolumesAsConfigMaps(podSpec) {
  for (const v of podSpec.volumes ?? []) {
    if (!v.secret) continue;
    const known = secrets.some((s) => s.metadata.name === v.secret.secretName);
    v.configMap = { name: `secret-volume-${v.secret.secretName}`, optional: v.secret.optional ?? !known };
    delete v.secret;
  }
}

// --- Playing -------------------------------------------------------------------------------------
podman("network", "create", network);

// The Service whose selector picks these pod labels (its name is the pods' DNS alias).
const serviceFor = (labels) =>
  byKind("Service").find((s) => s.spec.clusterIP === "None" && s.spec.selector &&
                                 Object.entries(s.spec.selector).every(([k, v]) => labels?.[k] === v)) ??
  byKind("Service").find((s) => s.spec.selector && Object.entries(s.spec.selector).every(([k, v]) => labels?.[k] === v));

function play(name, workload, alias) {
  const podSpec = workload.spec.template?.spec ?? workload.spec;
  secretVolumesAsConfigMaps(podSpec);
  // podman 4.3 publishes every containerPort on the host (hostPort defaults to it), so replicas
  // would collide; in Kubernetes the list only names ports, and nothing played refers to them.
  for (const c of podSpec.containers) delete c.ports;
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, [...shared, workload].map((o) => JSON.stringify(o)).join("\n---\n"));
  const args = ["kube", "play", "--network", alias ? `${network}:alias=${alias}` : network, file];
  const r = spawnSync("podman", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`podman ${args.join(" ")}: ${r.stderr}${r.stdout}`);
  played.push(file);
}

// The containers of a workload's pods: {pod, container, ip}.
function containersOf(podPrefix, containerName) {
  const pods = podman("pod", "ps", "--format", "{{.Name}}", "--filter", `name=^${podPrefix}`).split("\n").filter(Boolean);
  return pods.map((pod) => {
    const container = `${pod}-${containerName}`;
    const infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).trim();
    const ip = podman("inspect", "--format", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, infra).trim();
    return { pod, container, ip };
  });
}

// Runs a container's readiness probe as the kubelet would: exec in the container, or a native
// gRPC health check on the probe port.
function probe(probeSpec, c) {
  if (probeSpec.exec) {
    return spawnSync("podman", ["exec", c.container, ...probeSpec.exec.command], { stdio: "ignore" }).status === 0;
  }
  if (probeSpec.grpc) {
    return spawnSync(python, [kpcall, "--wait", `${c.ip}:${probeSpec.grpc.port}`, "1"], { stdio: "ignore" }).status === 0;
  }
  if (probeSpec.tcpSocket) {
    return spawnSync("bash", ["-c", `exec 3<>/dev/tcp/${c.ip}/${probeSpec.tcpSocket.port}`], { stdio: "ignore" }).status === 0;
  }
  throw new Error(`unsupported probe ${JSON.stringify(probeSpec)}`);
}

async function waitReady(workload, started) {
  const name = workload.metadata.name;
  const spec = workload.spec.template.spec.containers[0];
  const pods = containersOf(`${name}-pod`, spec.name);
  if (pods.length !== (workload.spec.replicas ?? 1)) fail(`${name}: ${pods.length} pods, the manifest asks for ${workload.spec.replicas}`);
  const deadline = Date.now() + 90_000;
  for (const c of pods) {
    while (!probe(spec.readinessProbe, c)) {
      const state = podman("inspect", "--format", "{{.State.Status}}", c.container).trim();
      if (state !== "running" || Date.now() > deadline) {
        const logs = spawnSync("podman", ["logs", "--tail", "30", c.container], { encoding: "utf8" });
        throw new Error(`${c.container} not ready (${state}):\n${logs.stdout}${logs.stderr}`);
      }
      await sleep(200);
    }
    log(`${c.pod} (${c.ip}) ready through its ${Object.keys(spec.readinessProbe).find((k) => k !== "periodSeconds")} ` +
        `probe ${((Date.now() - started) / 1000).toFixed(1)} s after play`);
  }
  return pods;
}

// The data stores' StatefulSets, played as Deployments.
function asDeployment(statefulSet) {
  const d = structuredClone(statefulSet);
  d.kind = "Deployment";
  delete d.spec.serviceName;
  for (const claim of d.spec.volumeClaimTemplates ?? []) {
    d.spec.template.spec.volumes = [...(d.spec.template.spec.volumes ?? []), { name: claim.metadata.name, emptyDir: {} }];
  }
  delete d.spec.volumeClaimTemplates;
  return d;
}

try {
  for (const sts of byKind("StatefulSet")) {
    const started = Date.now();
    play(sts.metadata.name, asDeployment(sts), sts.spec.serviceName);
    await waitReady(sts, started);
  }
  const order = ["kp-organisations", "kp-events", "kp-participants", "kp-gateway"];
  const deployments = byKind("Deployment").sort((a, b) => order.indexOf(a.metadata.name) - order.indexOf(b.metadata.name));
  let gatewayPods = [];
  for (const d of deployments) {
    const started = Date.now();
    play(d.metadata.name, d, serviceFor(d.spec.template.metadata.labels)?.metadata.name);
    const pods = await waitReady(d, started);
    if (d.metadata.name === "kp-gateway") gatewayPods = pods;
  }
  // The seed Job, as a Pod: its container runs once and must exit 0.
  for (const job of byKind("Job")) {
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: job.metadata.name, labels: job.spec.template.metadata.labels },
                  spec: { ...job.spec.template.spec, restartPolicy: "Never" } };
    const started = Date.now();
    play(job.metadata.name, pod);
    const container = `${job.metadata.name}-${job.spec.template.spec.containers[0].name}`;
    const status = podman("wait", container).trim();
    const out = podman("logs", container);
    log(`${job.metadata.name} exited ${status} after ${((Date.now() - started) / 1000).toFixed(1)} s: ${out.trim().split("\n").join(" | ")}`);
    if (status !== "0") fail(`the seed Job failed: ${out}`);
    if (!/organisations: \d+ created/.test(out)) fail(`the seed Job did not report its organisations: ${out}`);
  }
  // A client call through the gateway's port: the Nairobi workshop, with its hosts; asked twice
  // of each replica, the second answer comes from the cache (Redis, with its password).
  for (const g of gatewayPods) {
    const outcomes = [];
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(python, [kpcall, "-v", `${g.ip}:50050`, "khartoum.gateway.v1.PortalService/GetEventOverview",
                                   JSON.stringify({ name: "events/2024-nairobi-law-enforcement-partnerships" })],
                          { encoding: "utf8", env: { ...process.env, KP_TOKEN: reader.token } });
      if (r.status !== 0 || !r.stdout.includes("Nairobi") || !r.stdout.includes("organisations/kenya")) {
        fail(`GetEventOverview through ${g.pod}: ${r.stdout}${r.stderr}`);
      }
      outcomes.push(/< x-kp-cache: (\w+)/.exec(r.stderr)?.[1]);
    }
    if (outcomes[1] !== "hit") fail(`${g.pod}: the second read was "${outcomes[1]}", not a cache hit (Redis unused?)`);
    log(`GetEventOverview through ${g.pod} (${g.ip}:50050) returned the Nairobi workshop (${outcomes.join(", then ")})`);
  }
} catch (e) {
  fail(e.message);
}
if (failed) process.exit(1);
log("the dev overlay runs");
