'use strict'

// Start an nsqd (or nsqlookupd) binary on ephemeral loopback ports for one test.
//
// The binaries come from $NSQD_BIN (default: target/debug/nsqd in the
// repository) and $NSQLOOKUPD_BIN (default: nsqlookupd next to the nsqd
// binary). The daemon binds 127.0.0.1:0 and the real ports are read from its
// "TCP: listening on" / "HTTP: listening on" stderr lines, so tests never
// depend on (or collide with) the default ports.
//
// With TLS (`--tls-cert` among the extra args) nsqd also opens its HTTPS
// listener; the harness then binds it to 127.0.0.1:0 as well (unless the test
// passes its own `--https-address`) and waits for "HTTPS: listening on" too.

const {spawn} = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPO_ROOT = path.resolve(__dirname, '..', '..')
const LISTEN_RE = /\b(TCP|HTTPS|HTTP): listening on (\S+):(\d+)/

// Whether Go-style flag `name` (e.g. "tls-cert") is among `args`, in any spelling.
function hasFlag(args, name) {
  return args.some((a) => {
    if (!a.startsWith('-')) return false
    const bare = a.replace(/^-+/, '')
    return bare === name || bare.startsWith(`${name}=`)
  })
}

function nsqdBinary() {
  const bin = process.env.NSQD_BIN || path.join('target', 'debug', 'nsqd')
  return path.isAbsolute(bin) ? bin : path.join(REPO_ROOT, bin)
}

function nsqlookupdBinary() {
  const bin = process.env.NSQLOOKUPD_BIN || path.join(path.dirname(nsqdBinary()), 'nsqlookupd')
  return path.isAbsolute(bin) ? bin : path.join(REPO_ROOT, bin)
}

// A daemon whose stderr is drained for its whole life.
class Daemon {
  constructor(name, binary, buildHint, extraArgs = []) {
    this.name = name
    this.binary = binary
    this.buildHint = buildHint
    this.extraArgs = extraArgs
    this.tcpPort = null
    this.httpPort = null
    this.httpsPort = null
    // Set by subclasses whose daemon is expected to open an HTTPS listener.
    this.expectHttps = false
    this.log = ''
    this.proc = null
    this.exited = null
  }

  get tcpAddress() {
    return `127.0.0.1:${this.tcpPort}`
  }

  get httpAddress() {
    return `127.0.0.1:${this.httpPort}`
  }

  get httpsAddress() {
    return `127.0.0.1:${this.httpsPort}`
  }

  portsKnown() {
    return Boolean(this.tcpPort && this.httpPort && (this.httpsPort || !this.expectHttps))
  }

  // Arguments that precede extraArgs; called once per start.
  baseArgs() {
    return ['--tcp-address=127.0.0.1:0', '--http-address=127.0.0.1:0']
  }

  cleanup() {}

  start(timeoutMs = 10000) {
    try {
      fs.accessSync(this.binary, fs.constants.X_OK)
    } catch (err) {
      return Promise.reject(
        new Error(`${this.name} binary not found or not executable at ${this.binary} (${this.buildHint})`)
      )
    }
    this.proc = spawn(this.binary, [...this.baseArgs(), ...this.extraArgs], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exited = {code, signal}
        resolve(this.exited)
      })
    })

    return new Promise((resolve, reject) => {
      let pending = ''
      let grace = null
      const fail = (why) => {
        clearTimeout(timer)
        clearTimeout(grace)
        this.stop().finally(() =>
          reject(new Error(`${this.name} (${this.binary}) ${why}; stderr:\n${this.log}`))
        )
      }
      const which = this.expectHttps ? 'TCP, HTTP and HTTPS' : 'TCP and HTTP'
      const timer = setTimeout(() => fail(`did not report its ${which} ports within ${timeoutMs} ms`), timeoutMs)
      // stderr keeps being drained after startup so a chatty daemon never blocks.
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
          else if (m[1] === 'HTTPS') this.httpsPort = Number(m[3])
          else this.httpPort = Number(m[3])
          if (this.portsKnown()) {
            clearTimeout(timer)
            clearTimeout(grace)
            resolve(this)
          } else if (this.tcpPort && this.httpPort && grace === null) {
            // Every listener is bound before any is logged: a missing HTTPS
            // line is not coming, so do not wait the full startup timeout.
            grace = setTimeout(() => fail(`did not report its ${which} ports`), 3000)
          }
        }
      })
      this.proc.on('error', (err) => fail(`could not be started: ${err.message}`))
      this.proc.on('exit', (code, signal) => {
        if (!this.portsKnown()) {
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
    this.cleanup()
  }
}

// nsqd with a temporary --data-path.
class Nsqd extends Daemon {
  constructor(extraArgs = []) {
    super('nsqd', nsqdBinary(), 'build it with `cargo build -p nsqd` or set NSQD_BIN', extraArgs)
    this.dataPath = null
    this.expectHttps = hasFlag(extraArgs, 'tls-cert')
  }

  baseArgs() {
    this.dataPath = fs.mkdtempSync(path.join(os.tmpdir(), 'nsqd-interop-'))
    const args = [...super.baseArgs(), `--data-path=${this.dataPath}`]
    if (this.expectHttps && !hasFlag(this.extraArgs, 'https-address')) {
      // The default HTTPS address is 0.0.0.0:4152: keep it on loopback and ephemeral.
      args.push('--https-address=127.0.0.1:0')
    }
    return args
  }

  cleanup() {
    if (this.dataPath) {
      fs.rmSync(this.dataPath, {recursive: true, force: true})
      this.dataPath = null
    }
  }
}

// nsqlookupd announcing 127.0.0.1 (the address nsqd uses for its /channels queries).
class Nsqlookupd extends Daemon {
  constructor(extraArgs = []) {
    super('nsqlookupd', nsqlookupdBinary(), 'build it with `cargo build --bins` or set NSQLOOKUPD_BIN', extraArgs)
  }

  baseArgs() {
    return [...super.baseArgs(), '--broadcast-address=127.0.0.1']
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

// Starts nsqlookupd for the current node:test context and stops it when the test ends.
async function startNsqlookupd(t, extraArgs = []) {
  const lookupd = new Nsqlookupd(extraArgs)
  await lookupd.start()
  t.after(async () => {
    await lookupd.stop()
  })
  return lookupd
}

module.exports = {Nsqd, Nsqlookupd, startNsqd, startNsqlookupd, nsqdBinary, nsqlookupdBinary}
