// Renders deploy/k8s/base and deploy/k8s/overlays/production offline, validates every object
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
const SECRET = "twilio-gateway-credentials";
const SECRET_DIR = "/var/run/secrets/twilio";
const GRPC_PORT = 50051;
const CLIENT_NAMESPACE_LABEL = ["twilio-gateway/client", "true"];
const CREDENTIAL_ENV = ["TWILIO_ACCOUNT_SID", "TWILIO_API_KEY", "TWILIO_API_SECRET"];

// How long the gateway drains after SIGTERM: the Shutdown deadline in service/main.cc.
function gatewayDrainSeconds() {
  const main = readFileSync(path.join(repo, "service/main.cc"), "utf8");
  const m = main.match(/Shutdown\([^;]*?seconds\((\d+)\)/s);
  return m ? Number(m[1]) : 5;
}

// The uid the image runs as (deploy/Dockerfile `USER uid[:gid]`).
function imageUid() {
  const dockerfile = readFileSync(path.join(repo, "deploy/Dockerfile"), "utf8");
  const users = [...dockerfile.matchAll(/^USER\s+(\d+)/gm)];
  return users.length > 0 ? Number(users.at(-1)[1]) : undefined;
}

// GATEWAY_* variables the gateway reads (service/config/config.cc).
function knownSettings() {
  const config = readFileSync(path.join(repo, "service/config/config.cc"), "utf8");
  return new Set([...config.matchAll(/"(GATEWAY_[A-Z0-9_]+)"/g)].map((m) => m[1]));
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

function preStopSleepSeconds(container) {
  const preStop = container.lifecycle?.preStop;
  assert.ok(preStop, "the gateway container has no preStop hook");
  if (preStop.sleep) return Number(preStop.sleep.seconds);
  const cmd = preStop.exec?.command ?? [];
  const i = cmd.findIndex((arg) => /(^|\/)sleep$/.test(arg));
  assert.ok(i >= 0 && /^\d+$/.test(cmd[i + 1] ?? ""), `preStop is not a sleep: ${JSON.stringify(preStop)}`);
  return Number(cmd[i + 1]);
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
};
const rendered = Object.fromEntries(Object.entries(overlays).map(([name, dir]) => [name, render(dir)]));
const drainSeconds = gatewayDrainSeconds();

for (const [overlay, objects] of Object.entries(rendered)) {
  describe(`deploy/k8s ${overlay}`, () => {
    const deployment = () => get(objects, "Deployment", GATEWAY);
    const podLabels = () => deployment().spec.template.metadata.labels;

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
      assert.equal(find(objects, "Secret", SECRET), undefined, "credentials must not be in the manifests");
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

    test("probes are native gRPC health checks on the gRPC port", () => {
      const c = gatewayContainer(deployment());
      assert.ok(c.ports.some((p) => p.containerPort === GRPC_PORT && p.name === "grpc"));
      assert.ok(c.readinessProbe && c.livenessProbe, "readiness and liveness probes are required");
      for (const kind of ["readinessProbe", "livenessProbe", "startupProbe"]) {
        const probe = c[kind];
        if (!probe) continue;
        assert.deepEqual(probe.grpc, { port: GRPC_PORT }, `${kind} must be grpc: {port: ${GRPC_PORT}}`);
        for (const other of ["exec", "httpGet", "tcpSocket"]) assert.equal(probe[other], undefined, `${kind}.${other}`);
      }
      assert.ok(c.args.join(" ").includes(`:${GRPC_PORT}`), "the gateway must listen on the probed port");
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

    test("the credentials Secret is mounted as a directory (no subPath) and feeds the current env variables", () => {
      const spec = deployment().spec.template.spec;
      const c = gatewayContainer(deployment());
      const volumes = spec.volumes.filter((v) => v.secret?.secretName === SECRET);
      assert.equal(volumes.length, 1, "exactly one volume from the credentials Secret");
      assert.equal(volumes[0].secret.items, undefined, "mount every key, so new keys appear without a change here");
      const mounts = c.volumeMounts.filter((m) => m.name === volumes[0].name);
      assert.equal(mounts.length, 1);
      assert.equal(mounts[0].mountPath, SECRET_DIR);
      assert.equal(mounts[0].readOnly, true);
      for (const m of c.volumeMounts) {
        assert.equal(m.subPath, undefined, `${m.mountPath}: subPath mounts never see Secret updates`);
        assert.equal(m.subPathExpr, undefined, `${m.mountPath}: subPathExpr`);
      }
      // Readable by the gateway: group-readable with fsGroup = the gateway's group, or world-readable.
      const mode = volumes[0].secret.defaultMode ?? 0o644;
      assert.ok((mode & 0o004) !== 0 || ((mode & 0o040) !== 0 && spec.securityContext.fsGroup === 10001), `mode ${mode.toString(8)}`);
      for (const name of CREDENTIAL_ENV) {
        const env = c.env.find((e) => e.name === name);
        assert.ok(env, `env ${name}`);
        assert.equal(env.value, undefined, `${name} must not be a literal`);
        assert.deepEqual(env.valueFrom, { secretKeyRef: { name: SECRET, key: name } });
      }
      for (const e of c.env) {
        if (/^TWILIO_|SECRET|TOKEN|PASSWORD|KEY/.test(e.name)) {
          assert.equal(e.value, undefined, `${e.name} must come from a Secret, not a literal`);
          assert.ok(e.valueFrom?.secretKeyRef, `${e.name} must come from a Secret`);
        }
      }
    });

    test("preStop sleep and terminationGracePeriodSeconds cover the gateway's drain", () => {
      const sleep = preStopSleepSeconds(gatewayContainer(deployment()));
      const grace = deployment().spec.template.spec.terminationGracePeriodSeconds;
      assert.ok(sleep >= 3, `preStop sleep ${sleep}s is too short for endpoints to update`);
      assert.ok(grace >= sleep + drainSeconds, `grace ${grace}s < preStop ${sleep}s + drain ${drainSeconds}s`);
    });

    test("Service: ClusterIP on the gRPC port, selecting only the gateway pods", () => {
      const svc = get(objects, "Service", GATEWAY);
      assert.equal(svc.spec.type ?? "ClusterIP", "ClusterIP");
      assert.ok(matches({ matchLabels: svc.spec.selector }, podLabels()));
      const redis = find(objects, "Deployment", REDIS);
      if (redis) assert.ok(!matches({ matchLabels: svc.spec.selector }, redis.spec.template.metadata.labels));
      const [port] = svc.spec.ports;
      assert.equal(svc.spec.ports.length, 1);
      assert.equal(port.port, GRPC_PORT);
      assert.equal(port.appProtocol, "grpc");
      const c = gatewayContainer(deployment());
      assert.ok(c.ports.some((p) => p.name === port.targetPort || p.containerPort === port.targetPort));
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

    test("NetworkPolicy: gRPC in only from client namespaces; out only to DNS, HTTPS and Redis", () => {
      const np = get(objects, "NetworkPolicy", GATEWAY);
      assert.ok(matches(np.spec.podSelector, podLabels()));
      assert.deepEqual([...np.spec.policyTypes].sort(), ["Egress", "Ingress"]);

      assert.ok(np.spec.ingress.length >= 1);
      for (const rule of np.spec.ingress) {
        assert.deepEqual(rule.ports, [{ port: GRPC_PORT, protocol: "TCP" }]);
        assert.ok(rule.from?.length >= 1, "an ingress rule without `from` admits everyone");
        for (const peer of rule.from) {
          assert.deepEqual(Object.keys(peer), ["namespaceSelector"], "only namespaces may be admitted");
          assert.deepEqual(peer.namespaceSelector.matchLabels, Object.fromEntries([CLIENT_NAMESPACE_LABEL]));
        }
      }

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
      assert.equal(cm.data.GATEWAY_LISTEN, undefined, "the listen address is fixed by args (probes depend on it)");
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
    } else {
      test("production: 3 replicas, larger limits, image by digest, external Redis instead of in-cluster", () => {
        const base = rendered.base;
        const c = gatewayContainer(deployment());
        const baseC = gatewayContainer(get(base, "Deployment", GATEWAY));
        for (const r of ["cpu", "memory"]) {
          assert.ok(quantity(c.resources.limits[r]) > quantity(baseC.resources.limits[r]), `${r} limit not larger`);
        }
        assert.match(c.image, /@sha256:[0-9a-f]{64}$/, "production pins the image by digest");
        for (const kind of ["Deployment", "Service", "NetworkPolicy"]) {
          assert.equal(find(objects, kind, REDIS), undefined, `in-cluster Redis ${kind} left in production`);
        }
        const cm = get(objects, "ConfigMap", c.envFrom[0].configMapRef.name);
        assert.ok(!cm.data.GATEWAY_REDIS_ADDRESS.startsWith(`${REDIS}:`), "production points at the external Redis");
        const password = c.env.find((e) => e.name === "GATEWAY_REDIS_PASSWORD");
        assert.ok(password?.valueFrom?.secretKeyRef, "the managed Redis's password comes from a Secret");
        // The other settings are the base's.
        const baseCm = get(base, "ConfigMap", baseC.envFrom[0].configMapRef.name);
        for (const [k, v] of Object.entries(baseCm.data)) if (k !== "GATEWAY_REDIS_ADDRESS") assert.equal(cm.data[k], v, k);
      });
    }
  });
}

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
  });
});
