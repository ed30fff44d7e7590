// SPDX-License-Identifier: MIT
//
// Starts @20minutes/s3rver 5.0.0 for stoker's end-to-end tests.
//
//   node --openssl-legacy-provider tests/tools/s3rver.js \
//        --modules <prefix> [--ready-file PATH] -- <s3rver arguments>
//
// <prefix> is where `npm install --prefix <prefix> @20minutes/s3rver@5.0.0`
// put the package (or $S3RVER_PREFIX).  The package ships no bin, so we
// require its lib/cli.js and call parseAsync(argv) with the s3rver arguments
// (-d DIR -a 127.0.0.1 -p 0 --silent --configure-bucket NAME ...).
//
// Readiness: s3rver prints "S3rver listening on ADDR:PORT" once it listens;
// with --ready-file, the port is also written to PATH (atomically, via a
// rename) so a harness can wait for the file.  Port 0 picks a free port.
//
// --openssl-legacy-provider is required: ListObjectsV2 continuation tokens
// are built with DES, and without the legacy provider paging answers 500.
'use strict'
// Debian 12's Node is 18; @koa/router 15 (an s3rver 5 dependency) calls
// Array.prototype.toReversed, which arrived in Node 20.  This is the whole
// difference we have met, so supply it rather than require a newer Node.
if (!Array.prototype.toReversed) {
  Object.defineProperty(Array.prototype, 'toReversed', {
    value: function toReversed () { return this.slice().reverse() },
    writable: true,
    configurable: true
  })
}
const fs = require('node:fs')
const path = require('node:path')

function usage(msg) {
  console.error(`s3rver.js: ${msg}`)
  console.error('usage: s3rver.js --modules PREFIX [--ready-file PATH] -- s3rver-args...')
  process.exit(2)
}

let prefix = process.env.S3RVER_PREFIX || ''
let readyFile = ''
const args = process.argv.slice(2)
let rest = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--modules') prefix = args[++i]
  else if (args[i] === '--ready-file') readyFile = args[++i]
  else if (args[i] === '--') { rest = args.slice(i + 1); break }
  else usage(`unknown argument ${args[i]}`)
}
if (!prefix) usage('--modules PREFIX (or $S3RVER_PREFIX) is required')

const cliPath = path.join(prefix, 'node_modules', '@20minutes', 's3rver', 'lib', 'cli.js')
if (!fs.existsSync(cliPath)) usage(`${cliPath} not found: run npm install --prefix ${prefix} @20minutes/s3rver@5.0.0`)

// Catch the "listening" line to learn the port s3rver bound (port 0).
const info = console.info
console.info = (...a) => {
  info(...a)
  if (readyFile && typeof a[0] === 'string' && a[0].startsWith('S3rver listening on')) {
    const tmp = `${readyFile}.tmp`
    fs.writeFileSync(tmp, `${a[2]}\n`)
    fs.renameSync(tmp, readyFile)
  }
}

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0))

require(cliPath)
  .parseAsync([process.argv[0], 's3rver', ...rest])
  .catch((e) => {
    console.error(`s3rver.js: ${e && e.stack ? e.stack : e}`)
    process.exit(1)
  })
