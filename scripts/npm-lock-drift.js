// Compares two package-lock.json files, the committed one and the one `npm install` wrote,
// and prints every locked package that the install would change: a version or an integrity
// that differs, or a package added or dropped that is not an optional one.
//
// Optional packages may come and go: they are other platforms' binaries, which the registry
// this project reaches gains or lacks over time, and npm lists them without installing them.
//
// Usage: node scripts/npm-lock-drift.js COMMITTED WRITTEN   (exit 1 if anything drifted)
"use strict";
const fs = require("fs");

const [committedPath, writtenPath] = process.argv.slice(2);
if (!committedPath || !writtenPath) {
    console.error("usage: node npm-lock-drift.js COMMITTED WRITTEN");
    process.exit(2);
}
const packagesOf = (path) => JSON.parse(fs.readFileSync(path, "utf8")).packages ?? {};
const committed = packagesOf(committedPath);
const written = packagesOf(writtenPath);

const drift = [];
for (const [name, locked] of Object.entries(committed)) {
    const now = written[name];
    if (!now) {
        if (!locked.optional) drift.push(`${name || "(root)"}: dropped`);
    } else if (now.version !== locked.version || now.integrity !== locked.integrity) {
        drift.push(`${name || "(root)"}: ${locked.version} -> ${now.version}`);
    }
}
for (const [name, added] of Object.entries(written)) {
    if (!(name in committed) && !added.optional) {
        drift.push(`${name}: added ${added.version} (not optional)`);
    }
}
for (const line of drift) console.log(line);
process.exit(drift.length ? 1 : 0);
