'use strict'

// Start an nsqd binary on ephemeral loopback ports for one test.
//
// The binary comes from $NSQD_BIN (default: target/debug/nsqd in the
// repository). nsqd binds 127.0.0.1:0 and the real ports are read from its
// "TCP: listening on" / "HTTP: listening on" stderr lines, so tests never
// depend on (or collide with) the default 4150/4151.

const {spawn} = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPO_ROOT = path.resolve(__dirname, '..', '..')
const LISTEN_RE = /\b(TCP|HTTP): listening on (\S+):(\d+)/

function nsqdBinary() {
  const bin = process.env.NSQD_BIN || path.join('target', 'debug', 'nsqd')
  return path.isAbsolute(bin) ? bin : path.join(REPO_ROOT, bin)
}

class Nsqd {
  constructor(extraArgs = []) {
    this.binary = nsqdBinary()
    this.extraArgs = extraArgs
    this.tcpPort = null
    this.httpPort = null
    this.log = ''
    this.proc = null
    this.dataPath = null
    this.exited = null
  }

  get tcpAddress() {
    return `127.0.0.1:${this.tcpPort}`
  }

  start(timeoutMs = 10000) {
    try {
      fs.accessSync(this.binary, fs.constants.X_OK)
    } catch (err) {
      return Promise.reject(
        new Error(
          `nsqd binary not found or not executable at ${this.binary} ` +
            '(build it with `cargo build -p nsqd` or set NSQD_BIN)'
        )
      )
    }
    this.dataPath = fs.mkdtempSync(path.join(os.tmpdir(), 'nsqd-interop-'))
    this.proc = spawn(
      this.binary,
      [
        '--tcp-address=127.0.0.1:0',
        '--http-address=127.0.0.1:0',
        `--data-path=${this.dataPath}`,
        ...this.extraArgs,
      ],
      {stdio: ['ignore', 'ignore', 'pipe']}
    )
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exited = {code, signal}
        resolve(this.exited)
      })
    })

    return new Promise((resolve, reject) => {
      let pending = ''
      const fail = (why) => {
        clearTimeout(timer)
        this.stop().finally(() =>
          reject(new Error(`nsqd (${this.binary}) ${why}; stderr:\n${this.log}`))
        )
      }
      const timer = setTimeout(
        () => fail(`did not report its TCP and HTTP ports within ${timeoutMs} ms`),
        timeoutMs
      )
      // stderr keeps being drained after startup so a chatty nsqd never blocks.
      this.proc.stderr.on('data', (chunk) => {
        const text = chunk.toString('utf8')
        this.log += text
        pending += text
        let nl
        while ((nl = pending.indexOf('\n')) !== -1) {
          const line = pending.slice(0, nl)
          pending = pending.slice(nl + 1)
          const m = LISTEN_RE.exec(line)
          if (!m) continue
          if (m[1] === 'TCP') this.tcpPort = Number(m[3])
          else this.httpPort = Number(m[3])
          if (this.tcpPort && this.httpPort) {
            clearTimeout(timer)
            resolve(this)
          }
        }
      })
      this.proc.on('error', (err) => fail(`could not be started: ${err.message}`))
      this.proc.on('exit', (code, signal) => {
        if (!(this.tcpPort && this.httpPort)) {
          fail(`exited (code ${code}, signal ${signal}) before reporting its ports`)
        }
      })
    })
  }

  async stop(timeoutMs = 5000) {
    if (this.proc && this.exited === null) {
      this.proc.kill('SIGTERM')
      let timer
      const killed = new Promise((resolve) => {
        timer = setTimeout(() => {
          if (this.exited === null) this.proc.kill('SIGKILL')
          resolve()
        }, timeoutMs)
      })
      await Promise.race([this.exitPromise, killed])
      clearTimeout(timer)
      await this.exitPromise
    }
    if (this.dataPath) {
      fs.rmSync(this.dataPath, {recursive: true, force: true})
      this.dataPath = null
    }
  }
}

// Starts nsqd for the current node:test context and stops it when the test ends.
async function startNsqd(t, extraArgs = []) {
  const nsqd = new Nsqd(extraArgs)
  await nsqd.start()
  t.after(async () => {
    await nsqd.stop()
  })
  return nsqd
}

module.exports = {Nsqd, startNsqd, nsqdBinary}
