// SPDX-License-Identifier: MIT
// Validates the Kubernetes manifests in deploy/k8s/ offline.
//
//   node tests/deploy/validate_k8s.mjs [FILE|DIR]...     (default: deploy/k8s)
//
// 1. Every file parses as multi-document YAML (npm `yaml`), with no warning.
// 2. Every object is validated by apiVersion/kind against the Kubernetes
//    OpenAPI schemas compiled into the npm package kubernetes-models: types,
//    enums, required fields.  Those validators ignore fields they do not
//    know, so each object is also walked behind a Proxy that records which
//    keys the validator read: a key it never read is a field the schema does
//    not have (a misspelling, or a field of a newer API) and fails the check.
//    An apiVersion/kind without a schema fails.  JobSet
//    (jobset.x-k8s.io/v1alpha2) has no npm model: its own fields are checked
//    against JOBSET below, written from the JobSet API's jobset_types.go, and
//    each replicatedJobs[].template against the real batch/v1
//    JobTemplateSpec schema.
// 3. stoker's own rules for its pods (see checkPod): restricted security
//    settings, stokerd's flags, probes, ports and memory limit, the sidecar's
//    socket and client files reaching the trainer, no credentials in plain
//    values.
//
// Exit 0 when all hold; 1 with one line per problem; 1 naming
// scripts/deps.sh when the npm packages are not installed.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { missingNodeDeps } from "./check-node-deps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const models = join(here, "node_modules", "kubernetes-models");

const missing = missingNodeDeps();
if (missing.length) {
	console.error(`validate_k8s: npm packages missing in tests/deploy/node_modules: ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ` and ${missing.length - 3} more` : ""}.\n` +
		"Run scripts/deps.sh (it runs tests/deploy/install-node-deps.sh) first.");
	process.exit(1);
}
const YAML = await import("yaml");

const problems = [];
const fail = (where, msg) => problems.push(`${where}: ${msg}`);

// ------------------------------------------------------------ schemas

const schemaCache = new Map();
async function schemaFn(modulePath) {
	if (!schemaCache.has(modulePath))
		schemaCache.set(modulePath, (await import(pathToFileURL(modulePath).href)).validate);
	return schemaCache.get(modulePath);
}
const k8sSchema = (name) => schemaFn(join(models, "_schemas", `${name}.js`));
const metaSchema = () => schemaFn(join(here, "node_modules", "@kubernetes-models", "apimachinery",
	"_schemas", "IoK8sApimachineryPkgApisMetaV1ObjectMeta.js"));

// The schema for a built-in apiVersion/kind: the one the model class of
// kubernetes-models/<apiVersion>/<Kind>.js validates with.
async function builtinSchema(apiVersion, kind) {
	if (!/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
	const file = join(models, apiVersion, `${kind}.js`);
	if (!existsSync(file)) return null;
	const m = readFileSync(file, "utf8").match(/_schemas\/(\w+)\.js/);
	return m ? k8sSchema(m[1]) : null;
}

// Wraps v so that every key a validator reads is recorded; returns the proxy.
function track(v, path, records) {
	if (v === null || typeof v !== "object") return v;
	const rec = { path, keys: Array.isArray(v) ? [] : Object.keys(v), read: new Set() };
	records.push(rec);
	const copy = Array.isArray(v)
		? v.map((x, i) => track(x, `${path}/${i}`, records))
		: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, track(x, `${path}/${k}`, records)]));
	return new Proxy(copy, {
		get(t, p, r) {
			if (typeof p === "string") rec.read.add(p);
			return Reflect.get(t, p, r);
		},
	});
}

function describe(e) {
	const p = e.params || {};
	if (e.keyword === "required") return `missing required field ${p.missingProperty}`;
	if (e.keyword === "type") return `must be ${p.type}`;
	if (e.keyword === "enum") return `must be one of ${JSON.stringify(p.allowedValues)}`;
	return `${e.keyword} ${JSON.stringify(p)}`;
}

// Validates v with a compiled kubernetes-models validator, strictly.
function k8sValidate(fn, v, where) {
	const records = [];
	const ok = fn(track(v, "", records));
	if (!ok) {
		for (const e of fn.errors || []) fail(`${where}${e.instancePath}`, describe(e));
		return;
	}
	for (const r of records)
		for (const k of r.keys)
			if (!r.read.has(k)) fail(`${where}${r.path}/${k}`, "unknown field (not in the schema)");
}

// JobSet v1alpha2 (sigs.k8s.io/jobset api/jobset/v1alpha2/jobset_types.go).
const str = { type: "string" };
const int = { type: "integer" };
const bool = { type: "boolean" };
const strList = { type: "array", items: str };
const JOBSET = {
	type: "object", required: ["apiVersion", "kind", "metadata", "spec"], props: {
		apiVersion: str, kind: str, metadata: { k8s: "meta" },
		spec: {
			type: "object", props: {
				replicatedJobs: {
					type: "array", items: {
						type: "object", required: ["name", "template"], props: {
							name: str, groupName: str, replicas: int,
							template: { k8s: "IoK8sApiBatchV1JobTemplateSpec" },
							dependsOn: {
								type: "array", items: {
									type: "object", required: ["name", "status"],
									props: { name: str, status: { type: "string", enum: ["Ready", "Complete"] } },
								},
							},
						},
					},
				},
				network: { type: "object", props: { enableDNSHostnames: bool, subdomain: str, publishNotReadyAddresses: bool } },
				successPolicy: {
					type: "object", required: ["operator"],
					props: { operator: { type: "string", enum: ["All", "Any"] }, targetReplicatedJobs: strList },
				},
				failurePolicy: {
					type: "object", props: {
						maxRestarts: int,
						restartStrategy: { type: "string", enum: ["Recreate", "BlockingRecreate"] },
						rules: {
							type: "array", items: {
								type: "object", required: ["name", "action"], props: {
									name: str,
									action: { type: "string", enum: ["FailJobSet", "RestartJobSet", "RestartJobSetAndIgnoreMaxRestarts"] },
									onJobFailureReasons: strList, onJobFailureMessagePatterns: strList, targetReplicatedJobs: strList,
								},
							},
						},
					},
				},
				startupPolicy: {
					type: "object", required: ["startupPolicyOrder"],
					props: { startupPolicyOrder: { type: "string", enum: ["AnyOrder", "InOrder"] } },
				},
				suspend: bool,
				coordinator: { type: "object", required: ["replicatedJob"], props: { replicatedJob: str, jobIndex: int, podIndex: int } },
				managedBy: str,
				ttlSecondsAfterFinished: { type: "integer", min: 0 },
			},
		},
	},
};

async function checkSchema(s, v, where) {
	if (s.k8s) return k8sValidate(s.k8s === "meta" ? await metaSchema() : await k8sSchema(s.k8s), v, where);
	const t = Array.isArray(v) ? "array" : v === null ? "null" : Number.isInteger(v) ? "integer" : typeof v;
	if (t !== s.type) return fail(where, `must be ${s.type}, is ${t}`);
	if (s.enum && !s.enum.includes(v)) fail(where, `must be one of ${JSON.stringify(s.enum)}`);
	if (s.min !== undefined && v < s.min) fail(where, `must be >= ${s.min}`);
	if (t === "array") for (const [i, x] of v.entries()) await checkSchema(s.items, x, `${where}/${i}`);
	if (t === "object") {
		for (const r of s.required || []) if (!(r in v)) fail(where, `missing required field ${r}`);
		for (const [k, x] of Object.entries(v)) {
			if (!(k in s.props)) fail(`${where}/${k}`, "unknown field (not in the schema)");
			else await checkSchema(s.props[k], x, `${where}/${k}`);
		}
	}
}

// ------------------------------------------------------------ stoker's rules

const UNITS = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
function bytes(q) {
	const m = /^([0-9]+)(Ki|Mi|Gi|Ti|K|M|G|T|)$/.exec(String(q));
	return m ? Number(m[1]) * UNITS[m[2]] : NaN;
}
const flag = (args, name) => {
	const a = (args || []).find((x) => x === name || x.startsWith(`${name}=`));
	return a === undefined ? undefined : a === name ? true : a.slice(name.length + 1);
};
const envOf = (c) => Object.fromEntries((c.env || []).map((e) => [e.name, e]));
const OVERHEAD = 256 * 2 ** 20; // the least stokerd's own RSS is given above --ram

const gids = [];

function checkContainerSecurity(c, pod, where) {
	const sc = c.securityContext || {};
	if (sc.allowPrivilegeEscalation !== false) fail(where, "securityContext.allowPrivilegeEscalation must be false");
	if (!(sc.capabilities?.drop || []).includes("ALL")) fail(where, "securityContext.capabilities.drop must include ALL");
	if (sc.privileged) fail(where, "must not be privileged");
	const add = sc.capabilities?.add || [];
	if (c.name === "prepare-host-dirs") {
		if (add.some((x) => !["CHOWN", "FOWNER"].includes(x))) fail(where, "adds capabilities beyond CHOWN, FOWNER");
	} else {
		if (add.length) fail(where, `adds capabilities ${add}: stokerd and the trainer need none`);
		const nonRoot = sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
		if (nonRoot !== true) fail(where, "must run as non-root (runAsNonRoot)");
		if (!(sc.runAsUser > 0)) fail(where, "needs a fixed non-zero runAsUser");
	}
	if (c.name !== "trainer" && sc.readOnlyRootFilesystem !== true) fail(where, "readOnlyRootFilesystem must be true");
}

function checkStokerd(c, pod, podMeta, where, sidecar) {
	const a = c.args || [];
	if (!/(^|\/)stokerd$/.test((c.command || [])[0])) fail(where, "command must run stokerd");
	if (flag(a, "--foreground") !== true) fail(where, "stokerd needs --foreground (it daemonizes otherwise)");
	const metrics = flag(a, "--metrics");
	const port = c.ports?.find((p) => p.name === "metrics")?.containerPort;
	if (typeof metrics !== "string" || !metrics.startsWith("0.0.0.0:"))
		fail(where, "--metrics must listen on 0.0.0.0:PORT for the kubelet's probes and Prometheus");
	else if (Number(metrics.slice(8)) !== port) fail(where, `--metrics port ${metrics.slice(8)} is not the metrics containerPort ${port}`);
	const probe = (p, path) => {
		const g = c[p]?.httpGet;
		if (!g || g.path !== path || (g.port !== "metrics" && g.port !== port))
			fail(where, `${p} must be httpGet ${path} on the metrics port`);
	};
	probe("readinessProbe", "/readyz");
	probe("livenessProbe", "/healthz");
	if (sidecar) {
		probe("startupProbe", "/readyz");
		if (c.restartPolicy !== "Always") fail(where, "the sidecar stokerd is an init container with restartPolicy: Always");
	}
	const ann = podMeta?.annotations || {};
	if (ann["prometheus.io/scrape"] === "true" && ann["prometheus.io/port"] !== String(port))
		fail(where, `prometheus.io/port ${ann["prometheus.io/port"]} is not the metrics port ${port}`);
	const ram = bytes(flag(a, "--ram"));
	if (!(ram > 0)) fail(where, "--ram SIZE is needed (the default, 25% of the node's memory, ignores the pod's limit)");
	const lim = c.resources?.limits || {};
	if (flag(a, "--hugetlb") === true) {
		const hp = Object.keys(lim).find((k) => k.startsWith("hugepages-"));
		if (!hp || bytes(lim[hp]) < ram || bytes(c.resources?.requests?.[hp]) !== bytes(lim[hp]))
			fail(where, "--hugetlb needs hugepages-* requests = limits >= --ram");
		if (!(bytes(lim.memory) >= OVERHEAD)) fail(where, "needs a memory limit for its own RSS");
	} else if (!(bytes(lim.memory) >= ram + OVERHEAD)) {
		fail(where, `memory limit ${lim.memory} must hold --ram ${flag(a, "--ram")} (memfd pages stokerd writes are charged here) plus 256Mi`);
	}
	const nvmeDir = flag(a, "--nvme-dir");
	if (nvmeDir !== undefined) {
		if (!(bytes(flag(a, "--nvme")) > 0)) fail(where, "--nvme-dir needs --nvme SIZE");
		const m = (c.volumeMounts || []).find((v) => v.mountPath === nvmeDir);
		if (!m) fail(where, `--nvme-dir ${nvmeDir} is not a mounted volume`);
		const vol = pod.volumes?.find((v) => v.name === m?.name);
		if (vol?.emptyDir && !(bytes(vol.emptyDir.sizeLimit) >= bytes(flag(a, "--nvme"))))
			fail(where, "the tier-1 emptyDir's sizeLimit must hold --nvme");
	}
	const socket = flag(a, "--socket");
	if (typeof socket !== "string") fail(where, "--socket PATH is needed");
	return socket;
}

function checkPod(pod, podMeta, where) {
	const psc = pod.securityContext || {};
	if (psc.runAsNonRoot !== true) fail(where, "pod securityContext.runAsNonRoot must be true");
	if (psc.seccompProfile?.type !== "RuntimeDefault") fail(where, "pod seccompProfile must be RuntimeDefault");
	if (pod.automountServiceAccountToken !== false) fail(where, "automountServiceAccountToken must be false");
	gids.push([where, psc.runAsGroup]);
	const all = [...(pod.initContainers || []), ...(pod.containers || [])];
	const names = new Set();
	const vols = new Set((pod.volumes || []).map((v) => v.name));
	for (const c of all) {
		const cw = `${where} container ${c.name}`;
		if (names.has(c.name)) fail(cw, "duplicate container name");
		names.add(c.name);
		checkContainerSecurity(c, pod, cw);
		for (const m of c.volumeMounts || []) if (!vols.has(m.name)) fail(cw, `mounts volume ${m.name}, which the pod lacks`);
		for (const e of c.env || [])
			if (/^AWS_(SECRET_ACCESS_KEY|ACCESS_KEY_ID|SESSION_TOKEN)$/.test(e.name) && !e.valueFrom?.secretKeyRef)
				fail(cw, `${e.name} must come from a Secret (valueFrom.secretKeyRef), never a plain value`);
	}
	const sidecar = (pod.initContainers || []).find((c) => c.name === "stokerd");
	const daemon = sidecar || (pod.containers || []).find((c) => c.name === "stokerd");
	let socket;
	if (daemon) socket = checkStokerd(daemon, pod, podMeta, `${where} container stokerd`, !!sidecar);
	const trainer = (pod.containers || []).find((c) => c.name === "trainer");
	if (!trainer) {
		if (!daemon) fail(where, "neither a stokerd nor a trainer container");
		return;
	}
	const tw = `${where} container trainer`;
	const env = envOf(trainer);
	for (const v of ["LD_PRELOAD", "STOKER_SHIM_MAP", "STOKER_SOCKET", "PYTHONPATH"])
		if (!env[v]?.value) fail(tw, `needs ${v}`);
	if (env.STOKER_PLAN_GROUP) fail(tw, "STOKER_PLAN_GROUP set for the pod would put all its ranks in one plan group");
	const mounts = trainer.volumeMounts || [];
	const under = (path) => mounts.find((m) => path?.startsWith(m.mountPath.replace(/\/?$/, "/")));
	const client = under(env.LD_PRELOAD?.value);
	const install = (pod.initContainers || []).find((c) => c.name === "install-stoker-client");
	if (!client || !install) fail(tw, "LD_PRELOAD must lie on a volume that install-stoker-client fills");
	else if (!(install.volumeMounts || []).some((m) => m.name === client.name))
		fail(tw, `install-stoker-client does not write volume ${client.name}`);
	if (install && (install.command || [])[0] !== "/usr/local/bin/stoker-install-client")
		fail(`${where} container install-stoker-client`, "must run /usr/local/bin/stoker-install-client DEST");
	const sock = under(env.STOKER_SOCKET?.value);
	if (!sock) fail(tw, "STOKER_SOCKET is not on a mounted volume");
	if (socket !== undefined && socket !== env.STOKER_SOCKET?.value)
		fail(tw, `STOKER_SOCKET ${env.STOKER_SOCKET?.value} is not stokerd's --socket ${socket}`);
	if (daemon && sock && !(daemon.volumeMounts || []).some((m) => m.name === sock.name))
		fail(tw, "stokerd does not mount the trainer's socket volume");
	if (!daemon) {
		const vol = pod.volumes?.find((v) => v.name === sock?.name);
		if (!vol?.hostPath) fail(tw, "without a sidecar the socket must come from the node (hostPath)");
		if (sock && sock.readOnly !== true) fail(tw, "the node's socket directory should be mounted readOnly");
	}
}

function pods(obj) {
	const k = `${obj.apiVersion}/${obj.kind}`;
	if (k === "batch/v1/Job" || k === "apps/v1/DaemonSet") return [[obj.spec?.template?.spec, obj.spec?.template?.metadata, "spec/template/spec"]];
	if (k === "v1/Pod") return [[obj.spec, obj.metadata, "spec"]];
	if (k === "jobset.x-k8s.io/v1alpha2/JobSet")
		return (obj.spec?.replicatedJobs || []).map((r, i) =>
			[r.template?.spec?.template?.spec, r.template?.spec?.template?.metadata, `spec/replicatedJobs/${i}/template/spec/template/spec`]);
	return [];
}

// ------------------------------------------------------------ main

let files = process.argv.slice(2);
if (!files.length) files = [join(repo, "deploy", "k8s")];
files = files.flatMap((f) => statSync(f).isDirectory()
	? readdirSync(f).filter((x) => /\.ya?ml$/.test(x)).sort().map((x) => join(f, x)) : [f]);
if (!files.length) {
	console.error("validate_k8s: no manifests found");
	process.exit(1);
}
let nobj = 0;
for (const file of files) {
	const name = relative(repo, file) || file;
	const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true, strict: true });
	for (const [i, d] of docs.entries()) {
		for (const e of [...d.errors, ...d.warnings]) fail(`${name} document ${i + 1}`, e.message.split("\n")[0]);
		if (d.errors.length) continue;
		const obj = d.toJS({ maxAliasCount: 0 });
		if (obj === null || obj === undefined) continue; // an empty document, as `---` at the top makes
		nobj++;
		const where = `${name} ${obj?.kind ?? "?"}/${obj?.metadata?.name ?? "?"}`;
		if (typeof obj !== "object" || typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
			fail(where, "not a Kubernetes object (apiVersion and kind)");
			continue;
		}
		if (obj.apiVersion === "jobset.x-k8s.io/v1alpha2" && obj.kind === "JobSet") {
			await checkSchema(JOBSET, obj, where);
		} else {
			const fn = await builtinSchema(obj.apiVersion, obj.kind);
			if (!fn) {
				fail(where, `no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
				continue;
			}
			k8sValidate(fn, obj, where);
		}
		for (const [pod, meta, path] of pods(obj)) {
			if (pod) checkPod(pod, meta, `${where} ${path}`);
			else fail(`${where} ${path}`, "no pod spec");
		}
	}
}
const g = new Set(gids.map(([, x]) => x));
if (g.size > 1 || g.has(undefined))
	fail("runAsGroup", `every pod must share stokerd's gid (stokerd serves root, its uid, or its gid): ${JSON.stringify(gids)}`);
if (!nobj) fail("deploy/k8s", "no objects");
for (const p of problems) console.log(p);
if (problems.length) {
	console.log(`validate_k8s: ${problems.length} problem(s) in ${files.length} file(s)`);
	process.exit(1);
}
console.log(`validate_k8s: ${nobj} objects in ${files.length} files valid (kubernetes-models ${JSON.parse(readFileSync(join(models, "package.json"), "utf8")).version})`);
