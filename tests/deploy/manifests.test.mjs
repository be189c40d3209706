// Renders deploy/k8s/base and the overlays production and production-redis-tls offline, validates every object
// against the Kubernetes schemas (kubernetes-models), rejects fields the schemas do not know, and
// checks the properties the gateway's deployment depends on. Run: tests/deploy/run.sh
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

import { parseYamlDocuments, render } from "./kustomize.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const k8sDir = path.join(repo, "deploy/k8s");

const NAMESPACE = "twilio-gateway";
const GATEWAY = "twilio-gateway";
const REDIS = "twilio-gateway-redis";
const CLIENT_NAMESPACE_LABEL = ["twilio-gateway/client", "true"];
const MONITORING_NAMESPACE_LABEL = ["kubernetes.io/metadata.name", "monitoring"];
// The gateway's four ports, by container port name: gRPC with TLS, plaintext grpc.health.v1 for
// the kubelet's probes (which cannot speak TLS), Prometheus /metrics, and the Twilio webhook
// receiver (plain HTTP behind the Ingress, which ends TLS; GET /healthz for the liveness probe).
const PORTS = { grpc: 50051, health: 8081, metrics: 9090, webhook: 8080 };
// The flag that sets each port's listen address.
const LISTEN_FLAGS = { grpc: "listen", health: "health-listen", metrics: "metrics-listen", webhook: "webhook-listen" };
// The one Ingress, publishing the webhook path, and the ingress controller's pods that alone may
// reach the webhook port (ingress-nginx, as its Helm chart and manifests label them).
const WEBHOOK_INGRESS = "twilio-gateway-webhook";
// production-redis-tls: the CA stunnel verifies the managed Redis's certificate against.
const REDIS_CA_SECRET = "twilio-gateway-redis-ca";
const INGRESS_CONTROLLER_NAMESPACE = { "kubernetes.io/metadata.name": "ingress-nginx" };
const INGRESS_CONTROLLER_PODS = { "app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller" };
// --webhook-max-body-bytes when not set (issue 13's contract).
const WEBHOOK_MAX_BODY_BYTES_DEFAULT = 65536;
// What the gateway reads from files, each a whole Secret or ConfigMap mounted as a directory.
const MOUNTS = {
  credentials: { kind: "secret", name: "twilio-gateway-credentials", path: "/var/run/secrets/twilio" },
  tls: { kind: "secret", name: "twilio-gateway-tls", path: "/var/run/secrets/tls" },
  callerTokens: { kind: "secret", name: "twilio-gateway-caller-tokens", path: "/var/run/secrets/callers" },
  policy: { kind: "configMap", name: "twilio-gateway-policy", path: "/etc/twilio-gateway" },
};
// With GATEWAY_CREDENTIALS_DIR set, the gateway refuses to start when any of these is in its
// environment (service/config/config.cc, ApplyCredentials).
const CREDENTIAL_ENV_REFUSED = ["TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_AUTH_TOKEN"];
const FROM_SECRET = Symbol("value from a Secret");

const configCc = readFileSync(path.join(repo, "service/config/config.cc"), "utf8");

// The gateway's settings table (kSettings in service/config/config.cc): flag, environment
// variable, and whether the value is a file or directory path.
function settingsTable() {
  const start = configCc.indexOf("kSettings[]");
  assert.ok(start >= 0, "no kSettings[] in service/config/config.cc");
  const table = configCc.slice(start, configCc.indexOf("\n};", start));
  const entries = [...table.matchAll(/\{"([a-z0-9-]+)",\s*"([A-Z0-9_]+)"/g)];
  assert.ok(entries.length > 0, "found no settings in kSettings[]");
  return entries.map((m, i) => ({
    flag: m[1],
    env: m[2],
    isPath: /ApplyPath\(/.test(table.slice(m.index, entries[i + 1]?.index ?? table.length)),
  }));
}
const SETTINGS = settingsTable();

// The key of a flag's value in effectiveSettings(): its environment variable.
function settingKey(flag) {
  const setting = SETTINGS.find((x) => x.flag === flag);
  assert.ok(setting, `--${flag} is not a flag of service/config/config.cc`);
  return setting.env;
}

// absl::ParseDuration's units, for the durations used here ("5s", "250ms", "1m30s").
function durationSeconds(text) {
  const unit = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 };
  const parts = [...String(text).matchAll(/(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)/g)];
  assert.ok(parts.length > 0 && parts.map((p) => p[0]).join("") === String(text), `unparsable duration ${text}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]], 0);
}

// How long the gateway drains after SIGTERM at most: GATEWAY_DRAIN_GRACE as the Deployment sets
// it, else the default of service/config/config.h.
function gatewayDrainSeconds(settings) {
  if (settings.GATEWAY_DRAIN_GRACE !== undefined) return durationSeconds(settings.GATEWAY_DRAIN_GRACE);
  const header = readFileSync(path.join(repo, "service/config/config.h"), "utf8");
  const m = header.match(/drain_grace\s*=\s*absl::Seconds\((\d+)\)/);
  assert.ok(m, "no drain_grace default in service/config/config.h");
  return Number(m[1]);
}

// The uid the image runs as (deploy/Dockerfile `USER uid[:gid]`).
function imageUid() {
  const dockerfile = readFileSync(path.join(repo, "deploy/Dockerfile"), "utf8");
  const users = [...dockerfile.matchAll(/^USER\s+(\d+)/gm)];
  return users.length > 0 ? Number(users.at(-1)[1]) : undefined;
}

// GATEWAY_* variables the gateway reads (service/config/config.cc).
function knownSettings() {
  return new Set([...configCc.matchAll(/"(GATEWAY_[A-Z0-9_]+)"/g)].map((m) => m[1]));
}

// --- schema validation -------------------------------------------------------------------------

async function modelClass(apiVersion, kind) {
  const mod = await import(`kubernetes-models/${apiVersion}`);
  assert.ok(mod[kind], `kubernetes-models has no ${apiVersion} ${kind}`);
  return mod[kind];
}

// Wraps every object and array in a Proxy that records which properties the (ajv-compiled)
// validator read. After a successful validation, a property it never read is one the schema
// does not define: a typo such as `readinesProbe` that Kubernetes would silently drop.
function track(value, where, seen) {
  if (value === null || typeof value !== "object") return value;
  const accessed = new Set();
  const target = Array.isArray(value)
    ? value.map((v, i) => track(v, `${where}[${i}]`, seen))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, track(v, `${where}.${k}`, seen)]));
  if (!Array.isArray(value)) seen.push({ where, keys: Object.keys(value), accessed });
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (typeof prop === "string") accessed.add(prop);
      return Reflect.get(t, prop, receiver);
    },
  });
}

const TOP_LEVEL_FIELDS = new Set(["apiVersion", "kind", "metadata", "spec", "data", "binaryData", "immutable"]);

async function validateObject(obj) {
  const Model = await modelClass(obj.apiVersion, obj.kind);
  // kubernetes-models' own validate(): types, required fields, enums, formats.
  new Model(obj).validate();
  // Unknown fields.
  const model = new Model(obj);
  const seen = [];
  for (const key of Object.keys(model)) {
    assert.ok(TOP_LEVEL_FIELDS.has(key), `${obj.kind}/${obj.metadata.name}: unknown field ${key}`);
    model[key] = track(model[key], key, seen);
  }
  model.validate();
  const unknown = seen.flatMap(({ where, keys, accessed }) =>
    keys.filter((k) => !accessed.has(k)).map((k) => `${where}.${k}`),
  );
  assert.deepEqual(unknown, [], `${obj.kind}/${obj.metadata.name}: fields unknown to the schema`);
}

// --- helpers ---------------------------------------------------------------------------------

function find(objects, kind, name) {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

function get(objects, kind, name) {
  const obj = find(objects, kind, name);
  assert.ok(obj, `no ${kind} ${name} in the rendered manifests`);
  return obj;
}

function matches(selector, labels) {
  assert.ok(selector?.matchLabels, "selector must use matchLabels");
  assert.equal(selector.matchExpressions, undefined, "matchExpressions are not checked by this test");
  return Object.entries(selector.matchLabels).every(([k, v]) => labels?.[k] === v);
}

function quantity(q) {
  const m = String(q).match(/^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/);
  assert.ok(m, `unparsable quantity ${q}`);
  const unit = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? unit[m[2]] : 1);
}

function gatewayContainer(deployment) {
  const c = deployment.spec.template.spec.containers.find((x) => x.name === "gateway");
  assert.ok(c, "the gateway Deployment has no container named gateway");
  return c;
}

// redis-server's command line as the image's entrypoint passes it on (`--name value...`, the
// values up to the next `--` joined by spaces, as redis-server reads them), keyed by option. A
// config file would hide settings from this test, so there must be none.
function redisSettings(container) {
  assert.equal(container.command, undefined, "command replaces the image's entrypoint (redis-server with args)");
  const args = container.args ?? [];
  const out = {};
  for (let i = 0; i < args.length; ) {
    assert.ok(args[i].startsWith("--"), `redis argument ${JSON.stringify(args[i])}: settings only, no config file`);
    const name = args[i++].slice(2).toLowerCase();
    const values = [];
    while (i < args.length && !args[i].startsWith("--")) values.push(args[i++]);
    assert.equal(out[name], undefined, `redis --${name} given twice`);
    out[name] = values.join(" ");
  }
  return out;
}

// A Redis memory size ("512mb", "1gb", "100000000"): Redis reads mb/gb as powers of 1024.
function redisBytes(text) {
  const m = String(text).toLowerCase().match(/^(\d+)(b|k|kb|m|mb|g|gb)?$/);
  assert.ok(m, `unparsable Redis size ${text}`);
  const unit = { b: 1, k: 1e3, kb: 2 ** 10, m: 1e6, mb: 2 ** 20, g: 1e9, gb: 2 ** 30 };
  return Number(m[1]) * (m[2] ? unit[m[2]] : 1);
}

function preStopSleepSeconds(container) {
  const preStop = container.lifecycle?.preStop;
  assert.ok(preStop, "the gateway container has no preStop hook");
  if (preStop.sleep) return Number(preStop.sleep.seconds);
  const cmd = preStop.exec?.command ?? [];
  const i = cmd.findIndex((arg) => /(^|\/)sleep$/.test(arg));
  assert.ok(i >= 0 && /^\d+$/.test(cmd[i + 1] ?? ""), `preStop is not a sleep: ${JSON.stringify(preStop)}`);
  return Number(cmd[i + 1]);
}

function containerPort(container, name) {
  const port = (container.ports ?? []).find((p) => p.name === name);
  assert.ok(port, `the gateway container has no port named ${name}`);
  return port.containerPort;
}

const portOfAddress = (address) => Number(address.slice(address.lastIndexOf(":") + 1));
const hostOfAddress = (address) => address.slice(0, address.lastIndexOf(":"));

// service/config/config.cc IsLoopbackHost: literal loopback addresses only.
function isLoopbackHost(host) {
  if (host === "localhost" || host === "[::1]") return true;
  const octets = host.split(".");
  return octets.length === 4 && octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255) && octets[0] === "127";
}

// The kubelet's expansion of $(VAR) in args, from the container's environment (envFrom and env):
// `$$` is a literal `$`. A reference the environment does not define would reach the gateway as
// written, and a Secret's value would be readable in /proc/<pid>/cmdline: both fail here.
function expandVariables(text, environment) {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name) => {
    if (match === "$$") return "$";
    assert.notEqual(environment[name], FROM_SECRET, `args reference ${name}, a Secret's value: it would be on the command line`);
    assert.equal(typeof environment[name], "string", `args reference $(${name}), which env does not set`);
    return environment[name];
  });
}

// The settings the gateway starts with, keyed by environment variable name (settingKey()), as it
// resolves them: the envFrom ConfigMaps, then env (a value from a Secret is FROM_SECRET), then
// the flags of args, which win, with $(VAR) expanded. The container must use the image's
// entrypoint (no `command`).
function effectiveSettings(objects, container) {
  assert.equal(container.command, undefined, "command replaces the image's ENTRYPOINT (twilio-gateway)");
  const out = {};
  for (const from of container.envFrom ?? []) {
    assert.ok(from.configMapRef && !from.secretRef, "envFrom only ConfigMaps: a Secret's keys would become variables");
    Object.assign(out, get(objects, "ConfigMap", from.configMapRef.name).data);
  }
  for (const e of container.env ?? []) out[e.name] = e.value ?? (e.valueFrom?.secretKeyRef ? FROM_SECRET : e.valueFrom);
  const environment = { ...out };
  const args = (container.args ?? []).map((arg) => expandVariables(arg, environment));
  for (let i = 0; i < args.length; i++) {
    assert.ok(args[i].startsWith("--"), `unexpected argument ${args[i]}`);
    let [name, value] = args[i].slice(2).split(/=(.*)/s);
    const key = settingKey(name);
    if (value === undefined) {
      assert.ok(i + 1 < args.length, `--${name} needs a value`);
      value = args[++i];
    }
    out[key] = value;
  }
  return out;
}

// The start-up rules of service/config/config.cc (CheckCallerSecurity, ApplyCredentials): the
// reasons the gateway would refuse these settings, [] when it would start.
function startupProblems(settings) {
  const problems = [];
  const set = (name) => settings[name] !== undefined && settings[name] !== "";
  if (set("GATEWAY_TLS_CERT") !== set("GATEWAY_TLS_KEY")) problems.push("--tls-cert and --tls-key must be set together");
  if (set("GATEWAY_TLS_CLIENT_CA") && !set("GATEWAY_TLS_CERT")) problems.push("--tls-client-ca needs --tls-cert and --tls-key");
  const listen = settings.GATEWAY_LISTEN ?? "127.0.0.1:50051";
  if (!isLoopbackHost(hostOfAddress(listen))) {
    if (!set("GATEWAY_TLS_CERT") && settings.GATEWAY_ALLOW_PLAINTEXT !== "true") {
      problems.push(`--listen ${listen} is not loopback: needs --tls-cert and --tls-key (or --allow-plaintext=true)`);
    }
    if (!set("GATEWAY_CALLER_POLICY")) problems.push(`--listen ${listen} is not loopback: needs --caller-policy`);
  }
  if (set("GATEWAY_CREDENTIALS_DIR")) {
    for (const name of CREDENTIAL_ENV_REFUSED) if (set(name)) problems.push(`${name} is set with GATEWAY_CREDENTIALS_DIR`);
  }
  for (const { env, isPath } of SETTINGS) {
    if (isPath && settings[env] === "") problems.push(`${env} must be a file or directory path`);
  }
  return problems;
}

// service/auth/caller_policy.cc CallerPolicy::Parse: the reasons it would refuse `text`.
function policyProblems(text) {
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return [`not valid JSON: ${e.message}`];
  }
  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObject(json) || Object.keys(json).length !== 1 || !isObject(json.callers)) {
    return ['must be an object with one member, "callers"'];
  }
  const problems = [];
  for (const [caller, entry] of Object.entries(json.callers)) {
    if (!/^[A-Za-z0-9._\-:/@]{1,256}$/.test(caller)) problems.push(`${caller}: name has characters outside [A-Za-z0-9._-:/@]`);
    if (!isObject(entry) || Object.keys(entry).length !== 1 || !Array.isArray(entry.accounts)) {
      problems.push(`${caller}: must be {"accounts": [...]}`);
      continue;
    }
    for (const account of entry.accounts) {
      if (typeof account !== "string" || !(account === "*" || account === "default" || /^AC[0-9a-fA-F]{32}$/.test(account))) {
        problems.push(`${caller}: ${JSON.stringify(account)} is not "*", "default" or an account SID`);
      }
    }
  }
  return problems;
}

// The volume of `want` (MOUNTS entry) in the pod and the gateway's mounts of it.
function volumeAndMounts(spec, container, want) {
  const volumes = (spec.volumes ?? []).filter((v) => (want.kind === "secret" ? v.secret?.secretName : v.configMap?.name) === want.name);
  assert.equal(volumes.length, 1, `exactly one volume from ${want.kind} ${want.name}`);
  const mounts = (container.volumeMounts ?? []).filter((m) => m.name === volumes[0].name);
  assert.equal(mounts.length, 1, `${want.name} mounted once`);
  return { volume: volumes[0][want.kind], mount: mounts[0] };
}

// A real kustomize, when this machine has one (kubectl kustomize embeds it). Version 5 is needed
// for the `labels` field and for the same ConfigMap name hash.
function realKustomize() {
  const candidates = [
    ["kustomize", ["build"], ["version"]],
    ["kubectl", ["kustomize"], ["version", "--client"]],
  ];
  for (const [bin, buildArgs, versionArgs] of candidates) {
    try {
      const out = execFileSync(bin, versionArgs, { encoding: "utf8", timeout: 30000, stdio: ["ignore", "pipe", "ignore"] });
      const m = bin === "kubectl" ? out.match(/Kustomize Version:\s*v(\d+)\./) : out.match(/v(\d+)\.\d+/);
      if (m && Number(m[1]) >= 5) {
        return (dir) => execFileSync(bin, [...buildArgs, dir], { encoding: "utf8", timeout: 60000 });
      }
    } catch {
      // not installed, or not usable here
    }
  }
  return undefined;
}

// --- the tests -------------------------------------------------------------------------------

const overlays = {
  base: path.join(k8sDir, "base"),
  production: path.join(k8sDir, "overlays/production"),
  "production-redis-tls": path.join(k8sDir, "overlays/production-redis-tls"),
};
const rendered = Object.fromEntries(Object.entries(overlays).map(([name, dir]) => [name, render(dir)]));

for (const [overlay, objects] of Object.entries(rendered)) {
  describe(`deploy/k8s ${overlay}`, () => {
    const deployment = () => get(objects, "Deployment", GATEWAY);
    const podLabels = () => deployment().spec.template.metadata.labels;
    const settings = () => effectiveSettings(objects, gatewayContainer(deployment()));

    test("every object is valid against the Kubernetes schema, with no unknown field", async () => {
      assert.ok(objects.length > 0);
      for (const obj of objects) await validateObject(obj);
    });

    test("agrees with a real kustomize when one is installed", (t) => {
      const build = realKustomize();
      if (!build) {
        t.skip("no kustomize >= 5 (or kubectl kustomize) on this machine");
        return;
      }
      const key = (o) => `${o.apiVersion} ${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`;
      const theirs = new Map(parseYamlDocuments(build(overlays[overlay]), "kustomize").map((o) => [key(o), o]));
      const ours = new Map(objects.map((o) => [key(o), o]));
      assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
      for (const [k, o] of ours) assert.ok(isDeepStrictEqual(o, theirs.get(k)), `${k} differs from kustomize's`);
    });

    test("everything lives in the gateway's namespace, which enforces the restricted pod security standard", () => {
      const ns = get(objects, "Namespace", NAMESPACE);
      assert.equal(ns.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
      for (const obj of objects) {
        if (obj.kind !== "Namespace") assert.equal(obj.metadata.namespace, NAMESPACE, `${obj.kind}/${obj.metadata.name}`);
      }
      const secrets = objects.filter((o) => o.kind === "Secret").map((o) => o.metadata.name);
      assert.deepEqual(secrets, [], "credentials, keys and tokens must not be in the manifests");
    });

    test("Deployment: at least two replicas, spread across nodes and zones", () => {
      const d = deployment();
      assert.ok(d.spec.replicas >= 2, `replicas ${d.spec.replicas}`);
      if (overlay === "production") assert.equal(d.spec.replicas, 3);
      assert.ok(matches(d.spec.selector, podLabels()), "selector does not match the pod template");
      const spread = d.spec.template.spec.topologySpreadConstraints ?? [];
      const keys = spread.map((c) => c.topologyKey);
      assert.ok(keys.includes("kubernetes.io/hostname") && keys.includes("topology.kubernetes.io/zone"), `${keys}`);
      for (const c of spread) assert.ok(matches(c.labelSelector, podLabels()), "spread selector does not match the pods");
      assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
    });

    test("named ports grpc, health, metrics and webhook are the ports the gateway listens on, beyond loopback", () => {
      const c = gatewayContainer(deployment());
      const s = settings();
      for (const [name, port] of Object.entries(PORTS)) {
        assert.equal(containerPort(c, name), port, `port ${name}`);
        assert.ok((c.ports.find((p) => p.name === name).protocol ?? "TCP") === "TCP", `port ${name} is TCP`);
      }
      assert.equal(new Set(c.ports.map((p) => p.containerPort)).size, c.ports.length, "one container port per number");
      for (const [name, flag] of Object.entries(LISTEN_FLAGS)) {
        const address = s[settingKey(flag)];
        assert.equal(typeof address, "string", `--${flag} must be set`);
        assert.equal(portOfAddress(address), PORTS[name], `--${flag} ${address} is not on the ${name} port`);
        // The kubelet, the Service, Prometheus and the ingress controller all connect to the pod's address.
        assert.ok(!isLoopbackHost(hostOfAddress(address)), `--${flag} ${address} is loopback only`);
      }
    });

    test("probes: startup and readiness gRPC health on the plaintext health port, liveness GET /healthz on the webhook port", () => {
      const c = gatewayContainer(deployment());
      const health = containerPort(c, "health");
      const webhook = containerPort(c, "webhook");
      assert.notEqual(health, containerPort(c, "grpc"), "the gRPC port speaks TLS, which kubelet probes cannot");
      assert.ok(c.startupProbe && c.readinessProbe && c.livenessProbe, "startup, readiness and liveness probes are required");
      // Readiness is the gRPC health service's: SERVING only with credentials loaded and the upstream
      // loop running, NOT_SERVING in a drain. It takes the pod out of the Service and the Ingress alike.
      for (const kind of ["readinessProbe", "startupProbe"]) {
        const probe = c[kind];
        // A grpc probe takes a number (no named ports); no `service`: the server's overall health.
        assert.deepEqual(probe.grpc, { port: health }, `${kind} must be grpc: {port: ${health}}`);
        for (const other of ["exec", "httpGet", "tcpSocket"]) assert.equal(probe[other], undefined, `${kind}.${other}`);
      }
      assert.equal(portOfAddress(settings()[settingKey("health-listen")]), health, "the gateway must serve health on the probed port");
      // Liveness exercises the webhook listener, which the gRPC probes do not reach.
      const live = c.livenessProbe;
      for (const other of ["exec", "grpc", "tcpSocket"]) assert.equal(live[other], undefined, `livenessProbe.${other}`);
      assert.equal(live.httpGet?.path, "/healthz", "liveness is GET /healthz");
      assert.equal(live.httpGet.scheme ?? "HTTP", "HTTP", "the webhook port is plain HTTP: TLS ends at the Ingress");
      assert.equal(live.httpGet.host, undefined, "the probe must reach the pod itself");
      const probed = c.ports.find((p) => p.name === live.httpGet.port || p.containerPort === live.httpGet.port);
      assert.equal(probed?.containerPort, webhook, `liveness probes port ${live.httpGet.port}, not the webhook port`);
      assert.equal(portOfAddress(settings()[settingKey("webhook-listen")]), webhook, "the gateway must serve /healthz on the probed port");
      // Startup may take a while (Secrets mounted, credentials loaded). Liveness must not be
      // hair-trigger, all the less on a port that also carries Twilio's traffic.
      assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 10, "startup probe allows at least 10 s");
      assert.ok(live.periodSeconds * (live.failureThreshold ?? 3) >= 30, "liveness tolerates 30 s");
      assert.ok((live.timeoutSeconds ?? 1) >= 2, "liveness waits at least 2 s for an answer");
    });

    test("the gateway's start-up rules accept the settings: TLS and a caller policy beyond loopback", () => {
      const s = settings();
      assert.ok(!isLoopbackHost(hostOfAddress(s.GATEWAY_LISTEN)), `listen ${s.GATEWAY_LISTEN} must be reachable from callers`);
      assert.ok(s.GATEWAY_TLS_CERT && s.GATEWAY_TLS_KEY, "beyond loopback the gateway needs GATEWAY_TLS_CERT and GATEWAY_TLS_KEY");
      assert.notEqual(s.GATEWAY_ALLOW_PLAINTEXT, "true", "plaintext callers: these manifests do TLS, not a mesh");
      assert.ok(s.GATEWAY_CALLER_POLICY, "beyond loopback the gateway needs GATEWAY_CALLER_POLICY");
      assert.ok(s.GATEWAY_TLS_CLIENT_CA, "client certificates name callers (mutual TLS)");
      assert.ok(s.GATEWAY_CALLER_TOKENS, "callers without a certificate use bearer tokens");
      assert.deepEqual(startupProblems(s), [], "the gateway would refuse to start");
      const known = knownSettings();
      for (const name of Object.keys(s)) {
        if (name.startsWith("GATEWAY_")) assert.ok(known.has(name), `${name} is not a setting of service/config/config.cc`);
      }
    });

    test("pod template: Prometheus scrape annotations name the metrics port and /metrics", () => {
      const annotations = deployment().spec.template.metadata.annotations ?? {};
      const c = gatewayContainer(deployment());
      assert.equal(annotations["prometheus.io/scrape"], "true");
      assert.equal(annotations["prometheus.io/port"], String(containerPort(c, "metrics")));
      assert.equal(annotations["prometheus.io/path"], "/metrics");
      assert.equal(portOfAddress(settings().GATEWAY_METRICS_LISTEN), containerPort(c, "metrics"));
    });

    test("every container has resource requests and limits, requests within limits", () => {
      for (const obj of objects.filter((o) => o.kind === "Deployment")) {
        for (const c of obj.spec.template.spec.containers) {
          for (const r of ["cpu", "memory"]) {
            const request = c.resources?.requests?.[r];
            const limit = c.resources?.limits?.[r];
            assert.ok(request && limit, `${obj.metadata.name}/${c.name}: ${r} request and limit`);
            assert.ok(quantity(request) <= quantity(limit), `${obj.metadata.name}/${c.name}: ${r} request > limit`);
          }
        }
      }
    });

    test("gateway security context: non-root uid 10001, read-only root, no capabilities, RuntimeDefault seccomp", () => {
      const spec = deployment().spec.template.spec;
      const c = gatewayContainer(deployment());
      const effective = (field) => c.securityContext?.[field] ?? spec.securityContext?.[field];
      assert.equal(effective("runAsNonRoot"), true);
      assert.equal(effective("runAsUser"), 10001);
      assert.equal(imageUid(), 10001, "deploy/Dockerfile must run as the same uid");
      assert.equal(effective("seccompProfile")?.type, "RuntimeDefault");
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.notEqual(c.securityContext.privileged, true);
      assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
      assert.equal(spec.automountServiceAccountToken, false);
      assert.ok(!spec.hostNetwork && !spec.hostPID && !spec.hostIPC);
    });

    test("every pod meets the restricted pod security standard", () => {
      for (const obj of objects.filter((o) => o.kind === "Deployment")) {
        const spec = obj.spec.template.spec;
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
          const where = `${obj.metadata.name}/${c.name}`;
          const effective = (field) => c.securityContext?.[field] ?? spec.securityContext?.[field];
          assert.equal(effective("runAsNonRoot"), true, where);
          assert.notEqual(effective("runAsUser"), 0, where);
          assert.equal(effective("seccompProfile")?.type, "RuntimeDefault", where);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, where);
          assert.ok(c.securityContext?.capabilities?.drop?.includes("ALL"), where);
          assert.equal(c.securityContext?.capabilities?.add, undefined, where);
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, where);
          assert.ok(/[:@]/.test(c.image.split("/").at(-1)) && !c.image.endsWith(":latest"), `${where}: image ${c.image} not pinned`);
        }
        for (const v of spec.volumes ?? []) assert.equal(v.hostPath, undefined, `${obj.metadata.name}: hostPath volume`);
      }
    });

    test("every Secret and the policy ConfigMap are mounted whole, as directories, without subPath", () => {
      const spec = deployment().spec.template.spec;
      const c = gatewayContainer(deployment());
      for (const m of c.volumeMounts) {
        assert.equal(m.subPath, undefined, `${m.mountPath}: subPath mounts never see Secret or ConfigMap updates`);
        assert.equal(m.subPathExpr, undefined, `${m.mountPath}: subPathExpr`);
      }
      for (const [what, want] of Object.entries(MOUNTS)) {
        const { volume, mount } = volumeAndMounts(spec, c, want);
        assert.equal(volume.items, undefined, `${what}: mount every key, so new keys appear without a change here`);
        assert.notEqual(volume.optional, true, `${what}: without it the gateway cannot start or serve; wait for it`);
        assert.equal(mount.mountPath, want.path, `${what} mount path`);
        assert.equal(mount.readOnly, true, `${what} mounted read-only`);
        if (want.kind === "secret") {
          // Readable by the gateway: group-readable with fsGroup = the gateway's group, or world-readable.
          const mode = volume.defaultMode ?? 0o644;
          assert.ok((mode & 0o004) !== 0 || ((mode & 0o040) !== 0 && spec.securityContext.fsGroup === 10001), `${what}: mode ${mode.toString(8)}`);
          assert.equal(mode & 0o002, 0, `${what}: world-writable`);
        }
      }
      // No other Secret reaches the pod's files, and nothing through projected volumes unchecked.
      const expected = Object.values(MOUNTS).filter((m) => m.kind === "secret").map((m) => m.name);
      // The Redis CA of the TLS sidecar (checked with the sidecar below).
      if (overlay === "production-redis-tls") expected.push(REDIS_CA_SECRET);
      for (const v of spec.volumes) {
        if (v.secret) assert.ok(expected.includes(v.secret.secretName), `unexpected Secret volume ${v.secret.secretName}`);
        assert.equal(v.projected, undefined, `${v.name}: projected volumes are not checked by this test`);
      }
    });

    test("settings point into the mounts: the credentials directory and the TLS, token and policy files", () => {
      const s = settings();
      const c = gatewayContainer(deployment());
      const spec = deployment().spec.template.spec;
      const at = (what) => volumeAndMounts(spec, c, MOUNTS[what]).mount.mountPath;
      assert.equal(s.GATEWAY_CREDENTIALS_DIR, at("credentials"), "GATEWAY_CREDENTIALS_DIR is the credentials Secret's mount");
      // The keys of a kubernetes.io/tls Secret as cert-manager issues it.
      assert.equal(s.GATEWAY_TLS_CERT, `${at("tls")}/tls.crt`);
      assert.equal(s.GATEWAY_TLS_KEY, `${at("tls")}/tls.key`);
      assert.equal(s.GATEWAY_TLS_CLIENT_CA, `${at("tls")}/ca.crt`);
      assert.equal(s.GATEWAY_CALLER_TOKENS, `${at("callerTokens")}/tokens`);
      assert.equal(path.posix.dirname(s.GATEWAY_CALLER_POLICY), at("policy"), "GATEWAY_CALLER_POLICY under the policy mount");
      const policy = get(objects, "ConfigMap", MOUNTS.policy.name);
      const policyKey = path.posix.basename(s.GATEWAY_CALLER_POLICY);
      assert.ok(policyKey in (policy.data ?? {}), `no key ${policyKey} in the policy ConfigMap`);
      // Any path setting (service/config/config.cc ApplyPath) is absolute and inside a read-only mount.
      for (const { env, isPath } of SETTINGS) {
        if (!isPath || s[env] === undefined) continue;
        assert.ok(path.posix.isAbsolute(s[env]), `${env} ${s[env]} is not absolute`);
        const mount = c.volumeMounts.find((m) => s[env] === m.mountPath || s[env].startsWith(`${m.mountPath}/`));
        assert.ok(mount?.readOnly, `${env} ${s[env]} is not inside a read-only volume mount`);
      }
    });

    test("the caller policy ConfigMap is a plain object (no hash suffix) holding a policy the gateway accepts", () => {
      // Found by its exact name: a configMapGenerator would have appended a content hash (and an
      // edit would then roll every pod instead of reloading the file in place).
      const policy = get(objects, "ConfigMap", MOUNTS.policy.name);
      assert.equal(volumeAndMounts(deployment().spec.template.spec, gatewayContainer(deployment()), MOUNTS.policy).volume.name, MOUNTS.policy.name);
      assert.equal(policy.immutable, undefined, "an immutable ConfigMap cannot be edited in place");
      const file = path.posix.basename(settings().GATEWAY_CALLER_POLICY);
      assert.deepEqual(policyProblems(policy.data[file]), [], "service/auth/caller_policy.cc would refuse it");
      const callers = Object.keys(JSON.parse(policy.data[file]).callers);
      assert.ok(callers.length > 0, "a policy without callers admits nobody");
      assert.ok(callers.some((c) => c.startsWith("spiffe://")), "an example caller named by its certificate's SPIFFE ID");
    });

    test("no Twilio credential in the environment: the gateway reads them from the mounted Secret", () => {
      for (const c of [...(deployment().spec.template.spec.initContainers ?? []), ...deployment().spec.template.spec.containers]) {
        for (const from of c.envFrom ?? []) assert.equal(from.secretRef, undefined, `${c.name}: envFrom a Secret`);
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          assert.ok(!(e.name.startsWith("TWILIO_") && ref), `${c.name}: ${e.name} from secretKeyRef; credentials come from GATEWAY_CREDENTIALS_DIR`);
          assert.notEqual(ref?.name, MOUNTS.credentials.name, `${c.name}: ${e.name} from the credentials Secret`);
          assert.ok(!CREDENTIAL_ENV_REFUSED.includes(e.name), `${c.name}: ${e.name} set: the gateway refuses to start with GATEWAY_CREDENTIALS_DIR`);
          const pathSetting = SETTINGS.some((x) => x.isPath && x.env === e.name);
          if (pathSetting) {
            assert.equal(typeof e.value, "string", `${e.name} is a path, written here`);
          } else if (/^TWILIO_|SECRET|TOKEN|PASSWORD|KEY/.test(e.name)) {
            assert.equal(e.value, undefined, `${e.name} must come from a Secret, not a literal`);
            assert.ok(ref, `${e.name} must come from a Secret`);
          }
        }
      }
      const s = settings();
      assert.ok(s.GATEWAY_CREDENTIALS_DIR, "GATEWAY_CREDENTIALS_DIR must be set");
      for (const name of CREDENTIAL_ENV_REFUSED) assert.equal(s[name], undefined, `${name} in the gateway's environment`);
    });

    test("preStop sleep and terminationGracePeriodSeconds cover the gateway's drain", () => {
      const sleep = preStopSleepSeconds(gatewayContainer(deployment()));
      const grace = deployment().spec.template.spec.terminationGracePeriodSeconds;
      const drainSeconds = gatewayDrainSeconds(settings());
      assert.ok(sleep >= 3, `preStop sleep ${sleep}s is too short for endpoints to update`);
      assert.ok(grace >= sleep + drainSeconds, `grace ${grace}s < preStop ${sleep}s + drain ${drainSeconds}s`);
    });

    test("Service: ClusterIP on the gRPC, metrics and webhook ports, selecting only the gateway pods", () => {
      const svc = get(objects, "Service", GATEWAY);
      assert.equal(svc.spec.type ?? "ClusterIP", "ClusterIP");
      assert.ok(matches({ matchLabels: svc.spec.selector }, podLabels()));
      const redis = find(objects, "Deployment", REDIS);
      if (redis) assert.ok(!matches({ matchLabels: svc.spec.selector }, redis.spec.template.metadata.labels));
      const c = gatewayContainer(deployment());
      assert.deepEqual(svc.spec.ports.map((p) => p.name).sort(), ["grpc", "metrics", "webhook"], "grpc, metrics and webhook (for the Ingress); health is the kubelet's only");
      for (const port of svc.spec.ports) {
        assert.equal(port.port, PORTS[port.name], `Service port ${port.name}`);
        const target = c.ports.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort);
        assert.ok(target, `Service port ${port.name}: targetPort ${port.targetPort} is no container port`);
        assert.equal(target.name, port.name, `Service port ${port.name} targets container port ${target.name}`);
      }
      assert.equal(svc.spec.ports.find((p) => p.name === "grpc").appProtocol, "grpc");
      const scrape = svc.metadata.annotations?.["prometheus.io/scrape"];
      assert.equal(scrape, undefined, "the pods are scraped by annotation; the Service too would scrape them twice");
    });

    // The URL Twilio is given and signs (--public-webhook-url) and the Ingress that publishes it.
    const webhookIngress = () => {
      const ingresses = objects.filter((o) => o.kind === "Ingress");
      assert.deepEqual(ingresses.map((o) => o.metadata.name), [WEBHOOK_INGRESS], "one Ingress: only the webhook is public");
      return ingresses[0];
    };

    test("Ingress: HTTPS on exactly the webhook path, to the webhook port and nothing else", () => {
      const ing = webhookIngress();
      assert.equal(ing.apiVersion, "networking.k8s.io/v1");
      assert.ok(ing.spec.ingressClassName, "a class: the controller the NetworkPolicy admits, not whichever is the default");
      assert.equal(ing.spec.defaultBackend, undefined, "a default backend would send every other path to the gateway");
      assert.equal(ing.spec.rules.length, 1, "one host");
      const [rule] = ing.spec.rules;
      assert.match(rule.host ?? "", /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, "one exact host name, no wildcard");
      assert.equal(rule.http.paths.length, 1, "exactly one path is routed");
      const [route] = rule.http.paths;
      assert.equal(route.pathType, "Exact", "Exact: Prefix (or ImplementationSpecific) would route more than the path");

      // Backend: the gateway Service's webhook port, which targets the webhook container port.
      assert.equal(route.backend.resource, undefined);
      assert.equal(route.backend.service.name, GATEWAY);
      const svc = get(objects, "Service", GATEWAY);
      const want = route.backend.service.port;
      const svcPort = svc.spec.ports.find((p) => (want.name !== undefined ? p.name === want.name : p.port === want.number));
      assert.ok(svcPort, `the Service has no port ${JSON.stringify(want)}`);
      assert.equal(svcPort.name, "webhook", "the Ingress routes to the webhook port only");
      const c = gatewayContainer(deployment());
      const target = c.ports.find((p) => p.name === svcPort.targetPort || p.containerPort === svcPort.targetPort);
      assert.equal(target?.name, "webhook", "the Service's webhook port targets the webhook container port");

      // TLS for the host, from a Secret that is not the gRPC port's (internal CA) certificate.
      const tls = (ing.spec.tls ?? []).filter((t) => (t.hosts ?? []).includes(rule.host));
      assert.equal(tls.length, 1, `TLS for ${rule.host}`);
      assert.ok(tls[0].secretName, "TLS names its certificate's Secret");
      assert.notEqual(tls[0].secretName, MOUNTS.tls.name, "Twilio needs a publicly trusted certificate, not the gRPC port's");

      // ingress-nginx: no path rewrite (the gateway serves the URL's own path), and a body limit
      // no smaller than the gateway's, so the gateway's documented limit is the one Twilio meets.
      const annotations = ing.metadata.annotations ?? {};
      assert.equal(annotations["nginx.ingress.kubernetes.io/rewrite-target"], undefined, "no path rewrite");
      const bodySize = annotations["nginx.ingress.kubernetes.io/proxy-body-size"];
      if (bodySize !== undefined) {
        const m = String(bodySize).toLowerCase().match(/^(\d+)([km]?)$/);
        assert.ok(m, `unparsable proxy-body-size ${bodySize}`);
        const bytes = Number(m[1]) * { "": 1, k: 1024, m: 1024 * 1024 }[m[2]];
        const limit = Number(settings()[settingKey("webhook-max-body-bytes")] ?? WEBHOOK_MAX_BODY_BYTES_DEFAULT);
        assert.ok(bytes === 0 || bytes >= limit, `nginx refuses bodies over ${bodySize}, below the gateway's ${limit}`);
      }
    });

    test("--public-webhook-url is https://<the Ingress's host><its path>: the URL Twilio signs reaches the receiver", () => {
      const value = settings()[settingKey("public-webhook-url")];
      assert.equal(typeof value, "string", "--public-webhook-url must be set (the receiver verifies signatures against it)");
      const url = new URL(value);
      const [rule] = webhookIngress().spec.rules;
      assert.equal(url.protocol, "https:", "Twilio is given HTTPS; TLS ends at the Ingress");
      assert.equal(url.port, "", "the Ingress serves 443");
      assert.equal(url.username + url.password + url.search + url.hash, "", "no userinfo, query or fragment");
      assert.equal(url.hostname, rule.host, "the URL's host is the Ingress's");
      assert.equal(url.pathname, rule.http.paths[0].path, "the URL's path is the one the Ingress routes");
      assert.ok(webhookIngress().spec.tls.some((t) => t.hosts.includes(url.hostname)), "TLS covers the URL's host");
    });

    test("HorizontalPodAutoscaler (autoscaling/v2) scales the Deployment on CPU, never below its replicas", () => {
      const hpa = get(objects, "HorizontalPodAutoscaler", GATEWAY);
      assert.equal(hpa.apiVersion, "autoscaling/v2");
      assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: GATEWAY });
      assert.equal(hpa.spec.minReplicas, deployment().spec.replicas);
      assert.ok(hpa.spec.maxReplicas > hpa.spec.minReplicas);
      assert.ok(hpa.spec.metrics.some((m) => m.type === "Resource" && m.resource.name === "cpu"));
    });

    test("PodDisruptionBudget keeps one gateway up and still lets nodes drain", () => {
      const pdb = get(objects, "PodDisruptionBudget", GATEWAY);
      assert.equal(pdb.apiVersion, "policy/v1");
      assert.equal(pdb.spec.minAvailable, 1);
      assert.ok(pdb.spec.minAvailable < deployment().spec.replicas);
      assert.ok(matches(pdb.spec.selector, podLabels()));
    });

    test("NetworkPolicy: gRPC in only from client namespaces, metrics only from monitoring, webhook only from the ingress controller; out only to DNS, HTTPS and Redis", () => {
      const np = get(objects, "NetworkPolicy", GATEWAY);
      assert.ok(matches(np.spec.podSelector, podLabels()));
      assert.deepEqual([...np.spec.policyTypes].sort(), ["Egress", "Ingress"]);

      const c = gatewayContainer(deployment());
      const grpc = { port: containerPort(c, "grpc"), protocol: "TCP" };
      const metrics = { port: containerPort(c, "metrics"), protocol: "TCP" };
      const webhook = { port: containerPort(c, "webhook"), protocol: "TCP" };
      const seen = new Set();
      for (const rule of np.spec.ingress) {
        assert.ok(rule.ports?.length >= 1, "an ingress rule without ports opens every port, health and metrics too");
        assert.ok(rule.from?.length >= 1, "an ingress rule without `from` admits everyone");
        if (isDeepStrictEqual(rule.ports, [grpc])) {
          seen.add("grpc");
          for (const peer of rule.from) {
            assert.deepEqual(Object.keys(peer), ["namespaceSelector"], "only namespaces may be admitted");
            assert.deepEqual(peer.namespaceSelector.matchLabels, Object.fromEntries([CLIENT_NAMESPACE_LABEL]));
          }
        } else if (isDeepStrictEqual(rule.ports, [metrics])) {
          seen.add("metrics");
          for (const peer of rule.from) {
            // The monitoring namespace, optionally narrowed to its Prometheus pods (namespace AND pod).
            assert.ok(peer.namespaceSelector, "metrics admitted from a namespace, not from anywhere");
            assert.deepEqual(Object.keys(peer).filter((k) => k !== "podSelector"), ["namespaceSelector"]);
            assert.deepEqual(peer.namespaceSelector.matchLabels, Object.fromEntries([MONITORING_NAMESPACE_LABEL]));
          }
        } else if (isDeepStrictEqual(rule.ports, [webhook])) {
          seen.add("webhook");
          for (const peer of rule.from) {
            // One peer with both selectors: the controller's pods in the controller's namespace.
            assert.deepEqual(Object.keys(peer).sort(), ["namespaceSelector", "podSelector"],
              "the webhook port only to the ingress controller's pods in its namespace (namespace AND pod)");
            for (const selector of [peer.namespaceSelector, peer.podSelector]) {
              assert.equal(selector.matchExpressions, undefined, "matchExpressions are not checked by this test");
            }
            assert.deepEqual(peer.namespaceSelector.matchLabels, INGRESS_CONTROLLER_NAMESPACE);
            assert.deepEqual(peer.podSelector.matchLabels, INGRESS_CONTROLLER_PODS);
          }
        } else {
          assert.fail(
            `ingress rule opens ${JSON.stringify(rule.ports)}: only gRPC from clients, metrics from monitoring and ` +
              "the webhook from the ingress controller, each in a rule of its own; health needs no rule (the kubelet probes from the node)",
          );
        }
      }
      assert.deepEqual([...seen].sort(), ["grpc", "metrics", "webhook"], "ingress rules for gRPC, metrics and the webhook");

      const allowed = new Set(["53/UDP", "53/TCP", "443/TCP", "6379/TCP"]);
      const seenPorts = new Set();
      for (const rule of np.spec.egress) {
        assert.ok(rule.ports?.length >= 1, "an egress rule without ports allows every port");
        assert.ok(rule.to?.length >= 1, "an egress rule without `to` allows every destination");
        const ports = rule.ports.map((p) => `${p.port}/${p.protocol ?? "TCP"}`);
        for (const p of ports) {
          assert.ok(allowed.has(p), `egress to port ${p} is not allowed`);
          seenPorts.add(p);
        }
        if (ports.includes("6379/TCP")) {
          assert.deepEqual(ports, ["6379/TCP"], "the Redis rule opens Redis only");
          for (const peer of rule.to) {
            if (overlay === "base") {
              // In the namespace: a podSelector without namespaceSelector.
              assert.deepEqual(Object.keys(peer), ["podSelector"]);
              assert.ok(matches(peer.podSelector, get(objects, "Deployment", REDIS).spec.template.metadata.labels));
            } else {
              // The external Redis: a narrow address block.
              assert.deepEqual(Object.keys(peer), ["ipBlock"]);
              assert.ok(Number(peer.ipBlock.cidr.split("/")[1]) >= 24, `Redis block ${peer.ipBlock.cidr} too wide`);
            }
          }
        }
        if (ports.some((p) => p.startsWith("53/"))) {
          assert.ok(ports.every((p) => p.startsWith("53/")), "the DNS rule opens DNS only");
        }
      }
      for (const p of allowed) assert.ok(seenPorts.has(p), `no egress to ${p}`);
    });

    test("ConfigMap of GATEWAY_* settings reaches the gateway through envFrom", () => {
      const c = gatewayContainer(deployment());
      const refs = (c.envFrom ?? []).map((e) => e.configMapRef?.name).filter(Boolean);
      assert.equal(refs.length, 1);
      const cm = get(objects, "ConfigMap", refs[0]);
      const known = knownSettings();
      assert.ok(known.size > 0, "found no GATEWAY_* settings in service/config/config.cc");
      for (const key of Object.keys(cm.data)) {
        assert.ok(known.has(key), `${key} is not a setting of service/config/config.cc`);
      }
      for (const key of Object.values(LISTEN_FLAGS).map(settingKey)) {
        assert.equal(cm.data[key], undefined, `${key}: the addresses are fixed by args (probes, Service and NetworkPolicy depend on them)`);
      }
      assert.equal(cm.data[settingKey("public-webhook-url")], undefined, "the public URL is set next to the Ingress (PUBLIC_WEBHOOK_URL in env)");
      assert.ok(!Object.keys(cm.data).some((k) => /SECRET|TOKEN|PASSWORD/.test(k)), "secrets belong in a Secret");
      // Every replica shares one idempotency store, so a retry on another replica is recognised.
      assert.equal(cm.data.GATEWAY_IDEMPOTENCY_STORE, "redis");
      assert.match(cm.data.GATEWAY_REDIS_ADDRESS ?? "", /^[a-z0-9.-]+:\d+$/);
    });

    if (overlay === "base") {
      test("base: an in-cluster Redis for the idempotency store, reachable only from the gateway", () => {
        const redis = get(objects, "Deployment", REDIS);
        const svc = get(objects, "Service", REDIS);
        assert.ok(matches({ matchLabels: svc.spec.selector }, redis.spec.template.metadata.labels));
        const cm = get(objects, "ConfigMap", gatewayContainer(deployment()).envFrom[0].configMapRef.name);
        assert.equal(cm.data.GATEWAY_REDIS_ADDRESS, `${REDIS}:${svc.spec.ports[0].port}`);
        const np = get(objects, "NetworkPolicy", REDIS);
        assert.ok(matches(np.spec.podSelector, redis.spec.template.metadata.labels));
        assert.deepEqual(np.spec.egress, []);
        for (const rule of np.spec.ingress) {
          for (const peer of rule.from) {
            assert.deepEqual(Object.keys(peer), ["podSelector"]);
            assert.ok(matches(peer.podSelector, podLabels()));
          }
        }
        assert.match(gatewayContainer(deployment()).image, /:[\w.-]+$/, "base image has a tag");
      });

      // The exactly-once promise: Redis never loses or evicts a record it acknowledged (README.md,
      // "What the store must provide"; deploy/k8s/base/redis.yaml).
      test("base: Redis keeps every acknowledged record: fsync'ed AOF on a persistent volume, no eviction, one writer", () => {
        const redis = get(objects, "Deployment", REDIS);
        assert.equal(redis.spec.replicas, 1, "one Redis: a replica promoted on failover can miss acknowledged writes");
        assert.equal(redis.spec.strategy?.type, "Recreate", "one writer on the volume: the old pod stops before the new one starts");
        const spec = redis.spec.template.spec;
        assert.equal(spec.containers.length, 1);
        const c = spec.containers[0];
        const conf = redisSettings(c);

        // Persistence: every write in the append-only file, fsync'ed before Redis answers.
        assert.equal(conf.appendonly, "yes", "appendonly yes: without the AOF a restart loses records");
        assert.equal(conf.appendfsync, "always", "appendfsync always: everysec can lose the last second on a crash");
        assert.notEqual(conf["no-appendfsync-on-rewrite"], "yes", "no-appendfsync-on-rewrite yes skips fsync during rewrites");
        assert.notEqual(conf["aof-load-truncated"], "no", "a torn last write (never acknowledged) must not stop Redis from loading");
        for (const option of ["replicaof", "slaveof"]) assert.equal(conf[option], undefined, `--${option}: this Redis is the primary`);

        // Memory: refuse writes when full rather than evict; room for the fork of an AOF rewrite.
        assert.equal(conf["maxmemory-policy"], "noeviction", "every other policy evicts records (they all have TTLs)");
        assert.ok(conf.maxmemory !== undefined, "maxmemory must be set below the memory limit: at the limit the kernel kills Redis");
        const maxmemory = redisBytes(conf.maxmemory);
        assert.ok(maxmemory > 0, "maxmemory 0 means no limit");
        const limit = quantity(c.resources.limits.memory);
        assert.ok(limit >= 2 * maxmemory, `memory limit ${c.resources.limits.memory} < 2 x maxmemory ${conf.maxmemory}`);

        // The AOF's directory is a PersistentVolumeClaim, never an emptyDir.
        const dir = conf.dir ?? "/data"; // the official image's working directory
        const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === dir);
        assert.ok(mount, `nothing mounted at Redis's dir ${dir}`);
        assert.notEqual(mount.readOnly, true, `${dir} mounted read-only`);
        assert.equal(mount.subPath ?? "", "", `${dir}: no subPath`);
        const volume = spec.volumes.find((v) => v.name === mount.name);
        assert.equal(volume.emptyDir, undefined, `${dir} on an emptyDir: the records go with the pod`);
        assert.ok(volume.persistentVolumeClaim?.claimName, `${dir} must be a PersistentVolumeClaim`);
        assert.notEqual(volume.persistentVolumeClaim.readOnly, true);
        const pvc = get(objects, "PersistentVolumeClaim", volume.persistentVolumeClaim.claimName);
        assert.deepEqual(pvc.spec.accessModes, ["ReadWriteOnce"], "one node writes the volume");
        const storage = quantity(pvc.spec.resources.requests.storage);
        assert.ok(storage >= 2 * maxmemory, `volume ${pvc.spec.resources.requests.storage} < 2 x maxmemory: AOF, its increments and a rewrite`);
        assert.equal(spec.securityContext.fsGroup, spec.securityContext.runAsGroup ?? c.securityContext?.runAsGroup,
          "the volume is writable by Redis's group (fsGroup)");
      });
    } else if (overlay === "production") {
      test("production: 3 replicas, larger limits, image by digest, external Redis instead of in-cluster", () => {
        const base = rendered.base;
        const c = gatewayContainer(deployment());
        const baseC = gatewayContainer(get(base, "Deployment", GATEWAY));
        for (const r of ["cpu", "memory"]) {
          assert.ok(quantity(c.resources.limits[r]) > quantity(baseC.resources.limits[r]), `${r} limit not larger`);
        }
        assert.match(c.image, /@sha256:[0-9a-f]{64}$/, "production pins the image by digest");
        for (const kind of ["Deployment", "Service", "NetworkPolicy", "PersistentVolumeClaim"]) {
          assert.equal(find(objects, kind, REDIS), undefined, `in-cluster Redis ${kind} left in production`);
        }
        assert.deepEqual(objects.filter((o) => o.kind === "PersistentVolumeClaim"), [], "no volume claimed in production");
        const cm = get(objects, "ConfigMap", c.envFrom[0].configMapRef.name);
        assert.ok(!cm.data.GATEWAY_REDIS_ADDRESS.startsWith(`${REDIS}:`), "production points at the external Redis");
        const password = c.env.find((e) => e.name === "GATEWAY_REDIS_PASSWORD");
        assert.ok(password?.valueFrom?.secretKeyRef, "the managed Redis's password comes from a Secret");
        // The other settings are the base's.
        const baseCm = get(base, "ConfigMap", baseC.envFrom[0].configMapRef.name);
        for (const [k, v] of Object.entries(baseCm.data)) if (k !== "GATEWAY_REDIS_ADDRESS") assert.equal(cm.data[k], v, k);
        // The same listeners, TLS, callers, probes, mounts and policy as the base.
        for (const field of ["args", "ports", "volumeMounts", "startupProbe", "readinessProbe", "livenessProbe", "lifecycle"]) {
          assert.deepEqual(c[field], baseC[field], `gateway ${field} differs from the base's`);
        }
        const overlaid = ["GATEWAY_REDIS_PASSWORD", "PUBLIC_WEBHOOK_URL"];
        const withoutOverlaid = (env) => env.filter((e) => !overlaid.includes(e.name));
        assert.deepEqual(withoutOverlaid(c.env), withoutOverlaid(baseC.env), "gateway env differs from the base's (beyond the Redis password and the public URL)");
        // Production's own public URL, on the base's Ingress with only the host changed.
        const url = (cont) => cont.env.find((e) => e.name === "PUBLIC_WEBHOOK_URL")?.value;
        assert.notEqual(url(c), url(baseC), "production sets its own public webhook URL");
        const host = (objs) => get(objs, "Ingress", WEBHOOK_INGRESS).spec.rules[0].host;
        const baseIngress = JSON.stringify(get(base, "Ingress", WEBHOOK_INGRESS)).replaceAll(JSON.stringify(host(base)), JSON.stringify(host(objects)));
        const ours = { ...get(objects, "Ingress", WEBHOOK_INGRESS) };
        assert.deepEqual(
          { ...ours, metadata: { ...ours.metadata, labels: undefined } },
          { ...JSON.parse(baseIngress), metadata: { ...JSON.parse(baseIngress).metadata, labels: undefined } },
          "the Ingress is the base's apart from its host");
        const podSpec = deployment().spec.template.spec;
        assert.deepEqual(podSpec.volumes, get(base, "Deployment", GATEWAY).spec.template.spec.volumes);
        assert.deepEqual(get(objects, "ConfigMap", MOUNTS.policy.name).data, get(base, "ConfigMap", MOUNTS.policy.name).data);
        assert.deepEqual(get(objects, "NetworkPolicy", GATEWAY).spec.ingress, get(base, "NetworkPolicy", GATEWAY).spec.ingress);
      });
    }

    if (overlay === "production-redis-tls") {
      test("production-redis-tls: the gateway reaches Redis through a loopback stunnel sidecar that verifies the server's certificate", () => {
        const production = rendered.production;
        const spec = deployment().spec.template.spec;
        const c = gatewayContainer(deployment());
        // A native sidecar: an init container that keeps running, up before the gateway starts.
        const sidecars = (spec.initContainers ?? []).filter((i) => i.restartPolicy === "Always");
        assert.equal(sidecars.length, 1, "one sidecar init container (restartPolicy Always)");
        const tunnel = sidecars[0];
        assert.ok(tunnel.startupProbe?.tcpSocket, "the gateway starts once stunnel accepts connections");

        // stunnel's configuration, from the ConfigMap it mounts: `key = value` lines per section.
        const { volume, mount } = volumeAndMounts(spec, tunnel, { kind: "configMap", name: "twilio-gateway-stunnel" });
        const confFile = tunnel.args?.[0] ?? "";
        assert.ok(confFile.startsWith(`${mount.mountPath}/`), `stunnel reads ${confFile}, outside its ConfigMap mount`);
        const text = get(objects, "ConfigMap", volume.name).data[path.basename(confFile)];
        assert.ok(text, `the ConfigMap has no ${path.basename(confFile)}`);
        const global = {};
        const services = {};
        let section = global;
        for (const raw of text.split("\n")) {
          const line = raw.trim();
          if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;
          const m = line.match(/^\[(.+)\]$/);
          if (m) {
            section = services[m[1]] = {};
            continue;
          }
          const [k, v] = line.split(/\s*=\s*(.*)/s);
          section[k] = v;
        }
        assert.equal(global.foreground, "yes", "stunnel stays in the foreground (the container's process)");
        assert.deepEqual(Object.keys(services), ["redis"], "one service");
        const redis = services.redis;
        assert.equal(redis.client, "yes", "client mode: plain in, TLS out");
        assert.equal(redis.verifyChain, "yes", "the server's certificate must chain to the CA");
        assert.ok(redis.checkHost && redis.checkHost === hostOfAddress(redis.connect), "checkHost is the host stunnel connects to");
        assert.ok(!redis.verify && !redis.verifyPeer, "verifyChain, not the deprecated verify levels or a pinned peer");
        assert.match(redis.sslVersionMin ?? "", /^TLSv1\.[23]$/);

        // The CA from a Secret, mounted whole into the sidecar.
        const ca = volumeAndMounts(spec, tunnel, { kind: "secret", name: REDIS_CA_SECRET });
        assert.ok(redis.CAfile?.startsWith(`${ca.mount.mountPath}/`), `CAfile ${redis.CAfile} is not in the CA Secret's mount`);
        assert.equal(ca.mount.readOnly, true);
        assert.equal(ca.volume.items, undefined, "the whole Secret, so a renewed CA appears without a change here");
        assert.ok(((ca.volume.defaultMode ?? 0o644) & 0o004) !== 0, "readable by stunnel's uid");
        assert.ok(!(c.volumeMounts ?? []).some((m) => m.name === ca.mount.name), "only stunnel mounts the Redis CA");

        // Loopback only, and the gateway's Redis address is exactly stunnel's accept address.
        assert.ok(isLoopbackHost(hostOfAddress(redis.accept)), `stunnel accepts on ${redis.accept}, beyond loopback`);
        const effective = settings();
        assert.equal(effective.GATEWAY_REDIS_ADDRESS, redis.accept, "the gateway talks to stunnel");
        assert.equal(effective.GATEWAY_REDIS_SENTINELS, undefined, "Sentinel discovery would bypass stunnel");
        assert.ok(effective.GATEWAY_REDIS_USERNAME, "an ACL user");
        assert.equal(effective.GATEWAY_REDIS_PASSWORD, FROM_SECRET, "the user's password comes from a Secret");
        assert.ok(!(c.args ?? []).some((a) => /password/.test(a)), "no password flag");
        assert.ok(!/pass|PASSWORD/i.test(text), "no password in stunnel's configuration");
        // The NetworkPolicy lets the pod reach the Redis port stunnel connects to.
        const egressPorts = get(objects, "NetworkPolicy", GATEWAY).spec.egress.flatMap((r) => r.ports.map((p) => p.port));
        assert.ok(egressPorts.includes(portOfAddress(redis.connect)), `no egress to ${redis.connect}`);

        // Otherwise the production overlay's gateway.
        const prodC = gatewayContainer(get(production, "Deployment", GATEWAY));
        for (const field of ["image", "args", "env", "ports", "volumeMounts", "resources", "lifecycle"]) {
          assert.deepEqual(c[field], prodC[field], `gateway ${field} differs from production's`);
        }
      });
    }
  });
}

describe("the test's copies of the gateway's rules refuse what the gateway refuses", () => {
  test("start-up rules (service/config/config.cc)", () => {
    assert.deepEqual(startupProblems({}), [], "the default loopback listener needs nothing");
    assert.equal(startupProblems({ GATEWAY_LISTEN: "0.0.0.0:50051" }).length, 2, "beyond loopback: TLS and a policy");
    assert.equal(startupProblems({ GATEWAY_LISTEN: "0.0.0.0:1", GATEWAY_ALLOW_PLAINTEXT: "true" }).length, 1, "a policy still");
    assert.deepEqual(startupProblems({ GATEWAY_LISTEN: "127.0.0.9:1", GATEWAY_TLS_CERT: "/c" }), ["--tls-cert and --tls-key must be set together"]);
    assert.equal(startupProblems({ GATEWAY_CREDENTIALS_DIR: "/d", TWILIO_API_SECRET: FROM_SECRET }).length, 1);
    assert.equal(startupProblems({ GATEWAY_LISTEN: "127.0.0.1.nip.io:1" }).length, 2, "a name is not loopback");
  });

  test("caller policy (service/auth/caller_policy.cc)", () => {
    assert.deepEqual(policyProblems('{"callers": {"a": {"accounts": ["default", "*", "AC0123456789abcdef0123456789abcdef"]}}}'), []);
    assert.deepEqual(policyProblems('{"callers": {}}'), []);
    for (const bad of ["", "{}", '{"callers": {"a b": {"accounts": []}}}', '{"callers": {"a": {"accounts": ["AC1"]}}}',
      '{"callers": {"a": {"accounts": []}}, "x": 1}', '{"callers": {"a": {"accounts": [], "x": 1}}}', '{"callers": {"a": ["default"]}}']) {
      assert.notDeepEqual(policyProblems(bad), [], bad);
    }
  });
});

describe("the offline renderer", () => {
  test("computes kustomize's ConfigMap name hash", async () => {
    const { configMapHash } = await import("./kustomize.mjs");
    // What kustomize v5.5.0 names a generated ConfigMap with these literals (x-627hc852bm);
    // the value also checks Go's JSON escaping of < & >.
    assert.equal(configMapHash("", { GATEWAY_LOG_LEVEL: "info", A: "b<&>" }), "627hc852bm");
  });

  test("strategic merge: containers merge by name, other lists are replaced, null deletes", async () => {
    const { strategicMerge } = await import("./kustomize.mjs");
    const target = { spec: { containers: [{ name: "a", image: "x", args: ["1"] }, { name: "b" }], list: [1, 2], gone: 1 } };
    const patch = { spec: { containers: [{ name: "a", args: ["2"] }], list: [3], gone: null } };
    assert.deepEqual(strategicMerge(target, patch), {
      spec: { containers: [{ name: "a", image: "x", args: ["2"] }, { name: "b" }], list: [3] },
    });
    // kustomize 5.5's order: the items the patch names, merged or added, in the patch's order, then the rest.
    const env = (...names) => names.map((name) => ({ name }));
    assert.deepEqual(strategicMerge({ env: env("A", "B", "C") }, { env: [...env("C", "N"), { name: "A", $patch: "delete" }] }, ""), {
      env: env("C", "N", "B"),
    });
  });
});
