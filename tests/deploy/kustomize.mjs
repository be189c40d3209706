// A small, offline renderer for exactly the kustomize features deploy/k8s uses, so the manifest
// test runs on a machine without kubectl or kustomize. When a real kustomize (v4+) is on the
// machine, manifests.test.mjs renders with both and checks that they agree.
//
// Supported (kustomize v5 semantics):
//   resources          files (multi-document YAML) and directories holding a kustomization
//   namespace          sets metadata.namespace on namespaced objects
//   labels             pairs; includeTemplates (pod templates); includeSelectors is not supported
//   images             name -> newName / newTag / digest, on (init)containers of pod templates
//   configMapGenerator literals, behavior create | merge, name hash suffix as kustomize computes
//                      it, and references from pod templates renamed to the hashed name
//   patches            strategic merge from a file (path), targeted by apiVersion group, kind and
//                      name; `$patch: delete` removes the object; lists merge by the merge keys of
//                      the fields below and are replaced otherwise
// Anything else in a kustomization.yaml is an error, so the renderer cannot silently ignore a
// feature someone starts using.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";

const SUPPORTED_FIELDS = new Set([
  "apiVersion",
  "kind",
  "resources",
  "namespace",
  "labels",
  "images",
  "configMapGenerator",
  "patches",
]);

const CLUSTER_SCOPED_KINDS = new Set([
  "Namespace",
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "PersistentVolume",
  "StorageClass",
  "PriorityClass",
  "ValidatingWebhookConfiguration",
  "MutatingWebhookConfiguration",
]);

const POD_TEMPLATE_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);

// Strategic-merge keys of the list fields a patch may touch (from the Kubernetes OpenAPI
// x-kubernetes-patch-merge-key / list-map-keys). Other lists are replaced by the patch's list.
const MERGE_KEYS = {
  containers: ["name"],
  initContainers: ["name"],
  env: ["name"],
  volumes: ["name"],
  volumeMounts: ["mountPath"],
  imagePullSecrets: ["name"],
  topologySpreadConstraints: ["topologyKey", "whenUnsatisfiable"],
};

// Generated objects carry their pre-hash name here until the final rendering.
const GENERATED = Symbol("generatedName");

// Kubernetes reads YAML 1.1 (0440 is octal, yes/no are booleans): parse the same way.
export function parseYamlDocuments(text, source) {
  const docs = YAML.parseAllDocuments(text, { version: "1.1" });
  const out = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    }
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function readKustomization(dir) {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const file = path.join(dir, name);
    if (existsSync(file)) {
      const [k] = parseYamlDocuments(readFileSync(file, "utf8"), file);
      for (const field of Object.keys(k)) {
        if (!SUPPORTED_FIELDS.has(field)) {
          throw new Error(`${file}: field "${field}" is not supported by tests/deploy/kustomize.mjs`);
        }
      }
      return k;
    }
  }
  throw new Error(`${dir}: no kustomization.yaml`);
}

const groupOf = (apiVersion) => (apiVersion.includes("/") ? apiVersion.split("/")[0] : "");
const nameOf = (obj) => obj[GENERATED] ?? obj.metadata?.name;

function sameTarget(obj, patch) {
  return (
    obj.kind === patch.kind &&
    groupOf(obj.apiVersion) === groupOf(patch.apiVersion ?? obj.apiVersion) &&
    nameOf(obj) === patch.metadata?.name &&
    (patch.metadata?.namespace === undefined || patch.metadata.namespace === obj.metadata?.namespace)
  );
}

const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

export function strategicMerge(target, patch, field = "") {
  if (isPlainObject(target) && isPlainObject(patch)) {
    if (patch.$patch === "replace") {
      const { $patch, ...rest } = patch;
      return structuredClone(rest);
    }
    const out = { ...target };
    for (const [key, value] of Object.entries(patch)) {
      if (key === "$patch") throw new Error(`unsupported $patch: ${value}`);
      if (value === null) delete out[key];
      else if (key in out) out[key] = strategicMerge(out[key], value, key);
      else out[key] = structuredClone(value);
    }
    return out;
  }
  if (Array.isArray(target) && Array.isArray(patch) && MERGE_KEYS[field]) {
    const keys = MERGE_KEYS[field];
    const keyOf = (item) => JSON.stringify(keys.map((k) => item?.[k]));
    const rest = target.map((item) => structuredClone(item));
    const patched = [];
    for (const item of patch) {
      const i = rest.findIndex((existing) => keyOf(existing) === keyOf(item));
      const existing = i >= 0 ? rest.splice(i, 1)[0] : undefined;
      if (item.$patch === "delete") continue;
      patched.push(existing ? strategicMerge(existing, item, "") : structuredClone(item));
    }
    // kustomize (kyaml) puts the items the patch names, merged or added, first and in the
    // patch's order, then the target's other items in their order (checked against v5.5.0).
    return [...patched, ...rest];
  }
  return structuredClone(patch);
}

// kustomize's ConfigMap name hash (api/hasher): sha256 over the JSON of kind, name and data with
// sorted keys; the first 10 hex digits, with 0 1 3 a e replaced so the suffix has no vowels and
// cannot be read as a number. kustomize 5 hashes a generated ConfigMap while its metadata.name is
// still empty (the generator's name is kept aside), so `name` is "" for generated objects.
export function configMapHash(name, data) {
  const sortKeys = (o) => Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  const encoded = JSON.stringify(sortKeys({ data: sortKeys(data ?? {}), kind: "ConfigMap", name }))
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026");
  const hex = createHash("sha256").update(encoded).digest("hex");
  const map = { 0: "g", 1: "h", 3: "k", a: "m", e: "t" };
  return [...hex.slice(0, 10)].map((c) => map[c] ?? c).join("");
}

function literalsToData(literals, source) {
  const data = {};
  for (const literal of literals ?? []) {
    const eq = literal.indexOf("=");
    if (eq <= 0) throw new Error(`${source}: literal "${literal}" is not KEY=VALUE`);
    let value = literal.slice(eq + 1);
    if (value.length >= 2 && /^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    data[literal.slice(0, eq)] = value;
  }
  return data;
}

function generateConfigMaps(resources, generators, source) {
  for (const gen of generators ?? []) {
    const unsupported = Object.keys(gen).filter((k) => !["name", "behavior", "literals"].includes(k));
    if (unsupported.length > 0) throw new Error(`${source}: configMapGenerator ${unsupported} not supported`);
    const data = literalsToData(gen.literals, source);
    const behavior = gen.behavior ?? "create";
    const existing = resources.find((r) => r.kind === "ConfigMap" && r[GENERATED] === gen.name);
    if (behavior === "create") {
      if (existing) throw new Error(`${source}: ConfigMap ${gen.name} generated twice`);
      const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: gen.name }, data };
      cm[GENERATED] = gen.name;
      resources.push(cm);
    } else if (behavior === "merge" || behavior === "replace") {
      if (!existing) throw new Error(`${source}: no ConfigMap ${gen.name} to ${behavior}`);
      existing.data = behavior === "merge" ? { ...existing.data, ...data } : data;
    } else {
      throw new Error(`${source}: behavior ${behavior} not supported`);
    }
  }
}

function podSpecOf(obj) {
  if (POD_TEMPLATE_KINDS.has(obj.kind)) return obj.spec?.template?.spec;
  if (obj.kind === "Pod") return obj.spec;
  return undefined;
}

function allContainers(podSpec) {
  return [...(podSpec?.initContainers ?? []), ...(podSpec?.containers ?? [])];
}

function parseImage(image) {
  let rest = image;
  let digest;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { name: rest, tag, digest };
}

function applyImages(resources, images) {
  for (const entry of images ?? []) {
    for (const obj of resources) {
      for (const c of allContainers(podSpecOf(obj))) {
        const img = parseImage(c.image);
        if (img.name !== entry.name) continue;
        const name = entry.newName ?? img.name;
        if (entry.digest) c.image = `${name}@${entry.digest}`;
        else if (entry.newTag) c.image = `${name}:${entry.newTag}`;
        else c.image = `${name}${img.tag ? `:${img.tag}` : ""}${img.digest ? `@${img.digest}` : ""}`;
      }
    }
  }
}

function applyLabels(resources, labels, source) {
  for (const entry of labels ?? []) {
    if (entry.includeSelectors) throw new Error(`${source}: labels.includeSelectors not supported`);
    for (const obj of resources) {
      obj.metadata.labels = { ...obj.metadata.labels, ...entry.pairs };
      if (entry.includeTemplates && POD_TEMPLATE_KINDS.has(obj.kind) && obj.spec?.template) {
        obj.spec.template.metadata ??= {};
        obj.spec.template.metadata.labels = { ...obj.spec.template.metadata.labels, ...entry.pairs };
      }
    }
  }
}

function applyPatches(resources, patches, dir) {
  for (const p of patches ?? []) {
    if (!p.path || p.target || p.patch) {
      throw new Error(`${dir}: only "patches: - path: FILE" (strategic merge) is supported`);
    }
    const file = path.join(dir, p.path);
    for (const patch of parseYamlDocuments(readFileSync(file, "utf8"), file)) {
      const i = resources.findIndex((r) => sameTarget(r, patch));
      if (i < 0) throw new Error(`${file}: no ${patch.kind} ${patch.metadata?.name} to patch`);
      if (patch.$patch === "delete") {
        resources.splice(i, 1);
        continue;
      }
      const generated = resources[i][GENERATED];
      const merged = strategicMerge(resources[i], patch);
      if (generated) merged[GENERATED] = generated;
      resources[i] = merged;
    }
  }
}

function accumulate(dir) {
  const k = readKustomization(dir);
  const resources = [];
  for (const entry of k.resources ?? []) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) {
      resources.push(...accumulate(full));
    } else {
      resources.push(...parseYamlDocuments(readFileSync(full, "utf8"), full));
    }
  }
  generateConfigMaps(resources, k.configMapGenerator, dir);
  // The order of kustomize's built-in transformers.
  applyPatches(resources, k.patches, dir);
  if (k.namespace) {
    for (const obj of resources) {
      if (!CLUSTER_SCOPED_KINDS.has(obj.kind)) obj.metadata.namespace = k.namespace;
    }
  }
  applyLabels(resources, k.labels, dir);
  applyImages(resources, k.images);
  return resources;
}

// Renames generated ConfigMaps to name-hash and every reference to them from pod templates.
function finishGenerated(resources) {
  const renamed = new Map();
  for (const obj of resources) {
    if (obj.kind !== "ConfigMap" || !obj[GENERATED]) continue;
    const name = `${obj[GENERATED]}-${configMapHash("", obj.data)}`;
    renamed.set(obj[GENERATED], name);
    obj.metadata.name = name;
  }
  const rename = (ref) => {
    if (ref?.name && renamed.has(ref.name)) ref.name = renamed.get(ref.name);
  };
  for (const obj of resources) {
    const podSpec = podSpecOf(obj);
    if (!podSpec) continue;
    for (const c of allContainers(podSpec)) {
      for (const from of c.envFrom ?? []) rename(from.configMapRef);
      for (const e of c.env ?? []) rename(e.valueFrom?.configMapKeyRef);
    }
    for (const v of podSpec.volumes ?? []) {
      rename(v.configMap);
      for (const s of v.projected?.sources ?? []) rename(s.configMap);
    }
  }
  return resources.map((obj) => JSON.parse(JSON.stringify(obj)));
}

// Renders the kustomization in `dir` into plain objects.
export function render(dir) {
  return finishGenerated(accumulate(dir));
}
