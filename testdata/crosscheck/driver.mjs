#!/usr/bin/env node
// The conformance driver of PROTOCOL.md section 9 for the JavaScript
// implementation: one JSON request per line on stdin, one JSON answer per
// line on stdout, in order, until stdin ends. It is interchangeable with
// `go run ./internal/cmd/conformance`.
//
//   node driver.mjs < requests.jsonl > answers.jsonl

import readline from 'node:readline';
import { createDriver } from './lib/driver-core.mjs';

const driver = createDriver();
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
rl.on('line', (line) => {
  process.stdout.write(JSON.stringify(driver.handleLine(line)) + '\n');
});
