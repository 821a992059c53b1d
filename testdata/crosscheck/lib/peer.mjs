// A conformance driver running as a child process (PROTOCOL.md section 9):
// send a request object, get the answer object. Works with any driver
// command: `node driver.mjs`, `go run ./internal/cmd/conformance`, ...

import { spawn } from 'node:child_process';
import readline from 'node:readline';

export class Peer {
  /**
   * @param {string} command a shell command line
   * @param {{cwd?: string, log?: (dir: string, line: string) => void}} [opts]
   */
  constructor(command, { cwd, log } = {}) {
    this.command = command;
    this.log = log;
    this.child = spawn(command, { shell: true, cwd, stdio: ['pipe', 'pipe', 'inherit'] });
    this.pending = [];
    this.closed = false;
    this.exitPromise = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    readline.createInterface({ input: this.child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      this.log?.('<', line);
      const waiter = this.pending.shift();
      if (!waiter) return;
      try {
        waiter.resolve(JSON.parse(line));
      } catch (err) {
        waiter.reject(new Error(`peer answered a line that is not JSON: ${line}`));
      }
    });
    this.child.on('exit', (code) => {
      this.closed = true;
      for (const w of this.pending.splice(0)) w.reject(new Error(`peer exited (code ${code}) with requests pending`));
    });
  }

  /** Sends one request (an object, or a raw line when given a string). */
  request(req) {
    if (this.closed) return Promise.reject(new Error('peer has exited'));
    const line = typeof req === 'string' ? req : JSON.stringify(req);
    this.log?.('>', line);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(line + '\n');
    });
  }

  /** Closes stdin and waits for the driver to exit; returns its exit code. */
  async close() {
    this.child.stdin.end();
    return this.exitPromise;
  }
}
