// Exits 0 when tests/deploy/node_modules holds every package of
// package-lock.json at its locked version; else names what is missing and
// exits 1.  Used by install-node-deps.sh and by validate_k8s.mjs.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function missingNodeDeps() {
	const here = dirname(fileURLToPath(import.meta.url));
	const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
	const missing = [];
	for (const [path, pkg] of Object.entries(lock.packages)) {
		if (!path) continue;
		let have = null;
		try {
			have = JSON.parse(readFileSync(join(here, path, "package.json"), "utf8")).version;
		} catch {
			/* not installed */
		}
		if (have !== pkg.version)
			missing.push(`${path.replace(/^.*node_modules\//, "")}@${pkg.version}` +
				(have ? ` (found ${have})` : ""));
	}
	return missing;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	const m = missingNodeDeps();
	if (m.length) {
		console.error(`missing in tests/deploy/node_modules: ${m.join(", ")}`);
		process.exit(1);
	}
}
