'use strict'

// A throwaway NSQ cluster for the browser tests: nsqlookupd, nsqd and nsqadmin
// processes on 127.0.0.1 ephemeral ports with temporary data directories.
//
// Binaries come from $NSQD_BIN, $NSQLOOKUPD_BIN and $NSQADMIN_BIN (default
// target/debug/<name> in the repository). Each daemon binds port 0 and the
// real address is read from its "TCP: listening on" / "HTTP: listening on"
// line on stderr.

const {spawn} = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..')
const LISTEN_RE = /\b(TCP|HTTP): listening on (\S+)/

function binary(envName, name) {
  const bin = process.env[envName] || path.join('target', 'debug', name)
  return path.isAbsolute(bin) ? bin : path.join(REPO_ROOT, bin)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Poll `check` (sync or async) until it returns something truthy; fail after `timeoutMs`.
async function waitFor(what, check, timeoutMs = 15000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const value = await check()
      if (value) return value
      last = value
    } catch (err) {
      last = err
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `: ${last.message}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`)
    }
    await sleep(everyMs)
  }
}

class Daemon {
  constructor(name, bin, args, listeners) {
    this.name = name
    this.bin = bin
    this.args = args
    this.listeners = listeners // e.g. ['TCP', 'HTTP']
    this.addr = {}
    this.log = ''
    this.proc = null
    this.exited = null
    this.tmp = []
  }

  get http() {
    return this.addr.HTTP
  }

  get tcp() {
    return this.addr.TCP
  }

  start(timeoutMs = 15000) {
    try {
      fs.accessSync(this.bin, fs.constants.X_OK)
    } catch (err) {
      return Promise.reject(new Error(`${this.name}: binary ${this.bin} not found or not executable (build it with cargo build, or set the *_BIN variable)`))
    }
    this.proc = spawn(this.bin, this.args, {stdio: ['ignore', 'ignore', 'pipe']})
    this.exitPromise = new Promise((resolve) => this.proc.on('exit', (code, signal) => {
      this.exited = {code, signal}
      resolve()
    }))
    return new Promise((resolve, reject) => {
      let pending = ''
      const fail = (why) => {
        clearTimeout(timer)
        this.stop().finally(() => reject(new Error(`${this.name} ${why}; stderr:\n${this.log}`)))
      }
      const timer = setTimeout(() => fail(`did not report its ${this.listeners.join(' and ')} address within ${timeoutMs} ms`), timeoutMs)
      this.proc.stderr.on('data', (chunk) => {
        const text = chunk.toString('utf8')
        this.log += text
        if (process.env.BROWSER_TEST_LOG) process.stderr.write(`[${this.name}] ${text}`)
        pending += text
        let nl
        while ((nl = pending.indexOf('\n')) !== -1) {
          const line = pending.slice(0, nl)
          pending = pending.slice(nl + 1)
          const m = LISTEN_RE.exec(line)
          if (m && !this.addr[m[1]]) this.addr[m[1]] = m[2].replace(/^0\.0\.0\.0:/, '127.0.0.1:')
          if (this.listeners.every((l) => this.addr[l])) {
            clearTimeout(timer)
            resolve(this)
          }
        }
      })
      this.proc.on('error', (err) => fail(`could not start: ${err.message}`))
      this.proc.on('exit', (code, signal) => {
        if (!this.listeners.every((l) => this.addr[l])) fail(`exited early (code ${code}, signal ${signal})`)
      })
    })
  }

  async stop() {
    if (this.proc && this.exited === null) {
      this.proc.kill('SIGTERM')
      const timer = setTimeout(() => {
        if (this.exited === null) this.proc.kill('SIGKILL')
      }, 5000)
      await this.exitPromise
      clearTimeout(timer)
    }
    for (const dir of this.tmp) fs.rmSync(dir, {recursive: true, force: true})
    this.tmp = []
  }
}

function nsqlookupd() {
  return new Daemon('nsqlookupd', binary('NSQLOOKUPD_BIN', 'nsqlookupd'),
    ['--tcp-address=127.0.0.1:0', '--http-address=127.0.0.1:0', '--broadcast-address=127.0.0.1'], ['TCP', 'HTTP'])
}

function nsqd(name, lookupd, extra = []) {
  const dataPath = fs.mkdtempSync(path.join(os.tmpdir(), 'nsqadmin-browser-nsqd-'))
  const d = new Daemon(name, binary('NSQD_BIN', 'nsqd'), [
    '--tcp-address=127.0.0.1:0',
    '--http-address=127.0.0.1:0',
    '--broadcast-address=127.0.0.1',
    `--data-path=${dataPath}`,
    `--lookupd-tcp-address=${lookupd.tcp}`,
    '--e2e-processing-latency-percentile=0.99,0.5',
    '--max-msg-timeout=15m',
    ...extra,
  ], ['TCP', 'HTTP'])
  d.tmp.push(dataPath)
  return d
}

// nsqadmin asking `lookupd` (or, with lookupd null, only the nsqd given in `extra`).
function nsqadmin(name, lookupd, extra = []) {
  return new Daemon(name, binary('NSQADMIN_BIN', 'nsqadmin'), [
    '--http-address=127.0.0.1:0',
    ...(lookupd ? [`--lookupd-http-address=${lookupd.http}`] : []),
    ...(extra.some((a) => a.startsWith('--history-interval')) ? [] : ['--history-interval=1s']),
    ...extra,
  ], ['HTTP'])
}

// JSON over HTTP to one of the daemons (all on loopback).
async function http(method, url, body, headers = {}) {
  const init = {method, headers: {...headers}}
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    if (typeof body !== 'string') init.headers['Content-Type'] = 'application/json'
  }
  const res = await fetch(url, init)
  const text = await res.text()
  let json = null
  try {
    json = JSON.parse(text)
  } catch (err) {
    json = null
  }
  return {status: res.status, text, json}
}

async function ok(method, url, body) {
  const res = await http(method, url, body)
  if (res.status < 200 || res.status > 299) throw new Error(`${method} ${url} -> ${res.status} ${res.text}`)
  return res
}

// nsqd /stats as JSON (the 1.x format: {version, health, topics: [...]}, maybe wrapped in data).
async function nsqdStats(node, topic) {
  const q = topic ? `&topic=${encodeURIComponent(topic)}` : ''
  const res = await ok('GET', `http://${node.http}/stats?format=json${q}`)
  return res.json.data || res.json
}

async function topicStats(node, topic) {
  const stats = await nsqdStats(node, topic)
  return (stats.topics || []).find((t) => t.topic_name === topic) || null
}

async function channelStats(node, topic, channel) {
  const t = await topicStats(node, topic)
  return t ? (t.channels || []).find((c) => c.channel_name === channel) || null : null
}

module.exports = {REPO_ROOT, Daemon, nsqlookupd, nsqd, nsqadmin, http, ok, nsqdStats, topicStats, channelStats, waitFor, sleep}
