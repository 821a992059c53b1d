#!/usr/bin/env node
// Runs the conformance suite (lib/driver-suite.mjs) against a driver
// process and prints one line per check. Exit status 1 if any check fails.
//
//   node driversuite.mjs                                   # this implementation's driver
//   node driversuite.mjs --peer "go run ./internal/cmd/conformance" --cwd ../..
//   node driversuite.mjs --peer ... --no-session   # stop before the session layer

import { parseArgs } from 'node:util';
import { runDriverSuite } from './lib/driver-suite.mjs';
import { Peer } from './lib/peer.mjs';

const { values } = parseArgs({
  options: {
    peer: { type: 'string', default: 'node driver.mjs' },
    cwd: { type: 'string' },
    'no-session': { type: 'boolean', default: false },
    verbose: { type: 'boolean', short: 'v', default: false },
  },
});
const peer = new Peer(values.peer, { cwd: values.cwd ?? new URL('.', import.meta.url).pathname });
const results = await runDriverSuite((req) => peer.request(req), { sessions: !values['no-session'] });
const code = await peer.close();
let failed = 0;
for (const r of results) {
  if (!r.pass) failed++;
  if (!r.pass || values.verbose) {
    console.log(`${r.pass ? 'ok  ' : 'FAIL'} ${r.name}`);
    if (!r.pass) console.log(`     got  ${JSON.stringify(r.got)}\n     want ${JSON.stringify(r.want)}`);
  }
}
if (code !== 0) {
  console.log(`driver exited with status ${code}`);
  failed++;
}
console.log(`driversuite: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
