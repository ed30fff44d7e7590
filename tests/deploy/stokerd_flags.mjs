// SPDX-License-Identifier: MIT
// The stokerd command lines in deploy/k8s/ are ones the real stokerd accepts.
//
//   node tests/deploy/stokerd_flags.mjs STOKERD [DIR]     (DIR: deploy/k8s)
//
// For every stokerd container in the manifests, starts STOKERD with the
// container's args, changed only where the pod's environment differs from
// this machine: --socket in a temporary directory, --metrics on a free
// loopback port (the manifests' 0.0.0.0 is checked by validate_k8s.mjs),
// --ram 64Mi (same syntax, less memory), --nvme-dir in a temporary directory
// (made, as the pod's volume mount is there; same --nvme syntax, smaller).  Every other flag and value is
// passed as written.  Then /readyz and /healthz must answer 200 and SIGTERM
// must stop it with exit status 0.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { missingNodeDeps } from "./check-node-deps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const stokerd = process.argv[2];
if (!stokerd) {
	console.error("usage: stokerd_flags.mjs STOKERD [DIR]");
	process.exit(2);
}
const missing = missingNodeDeps();
if (missing.length) {
	console.error(`stokerd_flags: npm packages missing in tests/deploy/node_modules: ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ` and ${missing.length - 3} more` : ""}.\n` +
		"Run scripts/deps.sh (it runs tests/deploy/install-node-deps.sh) first.");
	process.exit(1);
}
const YAML = await import("yaml");

function containers(obj) {
	const specs = obj.kind === "JobSet"
		? obj.spec.replicatedJobs.map((r) => r.template.spec.template.spec)
		: [obj.spec.template.spec];
	return specs.flatMap((s) => [...(s.initContainers || []), ...(s.containers || [])]);
}

const freePort = () => new Promise((ok, no) => {
	const s = createServer().listen(0, "127.0.0.1", () => {
		const p = s.address().port;
		s.close(() => ok(p));
	}).on("error", no);
});

async function get(url) {
	try {
		const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
		return [r.status, await r.text()];
	} catch (e) {
		return [0, String(e)];
	}
}

const dir = process.argv[3] || join(repo, "deploy", "k8s");
const seen = new Set();
let bad = 0, n = 0;
for (const f of readdirSync(dir).filter((x) => x.endsWith(".yaml")).sort()) {
	for (const doc of YAML.parseAllDocuments(readFileSync(join(dir, f), "utf8"))) {
		const obj = doc.toJS();
		if (!obj?.spec) continue;
		for (const c of containers(obj).filter((c) => c.name === "stokerd")) {
			const key = JSON.stringify(c.args);
			if (seen.has(key)) continue;
			seen.add(key);
			n++;
			const tmp = mkdtempSync(join(tmpdir(), "stoker-k8s-"));
			mkdirSync(join(tmp, "nvme")); // the pod's tier-1 volume mount exists; stokerd does not create it
			const port = await freePort();
			const args = c.args.map((a) => {
				const [k] = a.split("=", 1);
				if (k === "--socket") return `--socket=${tmp}/stoker.sock`;
				if (k === "--metrics") return `--metrics=127.0.0.1:${port}`;
				if (k === "--ram") return "--ram=64Mi";
				if (k === "--nvme-dir") return `--nvme-dir=${tmp}/nvme`;
				if (k === "--nvme") return "--nvme=256Mi";
				return a;
			});
			const label = `${f} ${obj.kind}/${obj.metadata.name}: stokerd ${args.join(" ")}`;
			const p = spawn(stokerd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: tmp } });
			let log = "";
			p.stdout.on("data", (d) => (log += d));
			p.stderr.on("data", (d) => (log += d));
			const exited = new Promise((ok) => p.on("exit", (code, sig) => ok([code, sig])));
			let status = null;
			p.on("exit", () => (status ??= "exited"));
			let ready = [0, ""];
			for (let i = 0; i < 100 && status === null; i++) {
				ready = await get(`http://127.0.0.1:${port}/readyz`);
				if (ready[0] === 200) break;
				await new Promise((r) => setTimeout(r, 100));
			}
			const health = status === null ? await get(`http://127.0.0.1:${port}/healthz`) : [0, "exited"];
			p.kill("SIGTERM");
			const timer = setTimeout(() => p.kill("SIGKILL"), 10000);
			const [code, sig] = await exited;
			clearTimeout(timer);
			rmSync(tmp, { recursive: true, force: true });
			if (ready[0] !== 200 || health[0] !== 200 || code !== 0) {
				bad++;
				console.log(`FAIL ${label}\n  /readyz ${ready[0]} /healthz ${health[0]} exit ${code ?? sig}\n  log:\n${log.replace(/^/gm, "    ")}`);
			} else {
				console.log(`ok   ${label}`);
			}
		}
	}
}
if (!n) {
	console.log("stokerd_flags: no stokerd container in deploy/k8s");
	process.exit(1);
}
console.log(`stokerd_flags: ${n - bad} of ${n} stokerd command lines accepted`);
process.exit(bad ? 1 : 0);
