'use strict'

// Helpers that turn nsqjs 0.13.0's event callbacks into awaitable steps.

const {test} = require('node:test')
const {performance} = require('node:perf_hooks')
const nsq = require('nsqjs')
const wire = require('nsqjs/lib/wire')

const {startNsqd} = require('./nsqd')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Poll `cond` until truthy; the bound turns a lost event into a clear failure.
async function waitFor(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = cond()
    if (value) return value
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await sleep(10)
  }
}

// Assert that `cond` stays false for `ms` (for "must not happen" checks).
async function expectNothing(cond, ms, what) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (cond()) throw new Error(`unexpected: ${what}`)
    await sleep(10)
  }
  if (cond()) throw new Error(`unexpected: ${what}`)
}

class Delivery {
  constructor(msg) {
    this.at = performance.now()
    this.msg = msg
    this.body = msg.body.toString('latin1')
    this.attempts = msg.attempts
    this.id = msg.id
    this.timestamp = msg.timestamp
  }
}

// A Reader that records every delivery; `handler(delivery)` decides FIN/REQ/hold.
// The default handler finishes immediately; a handler that does nothing leaves
// the message in flight on the server.
class Consumer {
  constructor(nsqd, topic, channel, options = {}, handler = null) {
    this.deliveries = []
    this.errors = []
    this.subscribed = false
    this.closedConns = 0
    this.handler = handler || ((d) => d.msg.finish())
    // nsqd === null: discovery only, through `lookupdHTTPAddresses` in options.
    this.reader = new nsq.Reader(topic, channel, {
      ...(nsqd ? {nsqdTCPAddresses: [nsqd.tcpAddress]} : {}),
      ...options,
    })
    this.reader.on('message', (msg) => {
      const d = new Delivery(msg)
      this.deliveries.push(d)
      this.handler(d)
    })
    this.reader.on('error', (err) => this.errors.push(String(err)))
    // nsqjs emits 'ready' on the SUB acknowledgement: once seen, the channel
    // exists and publishing cannot race the subscription.
    this.reader.on('ready', () => {
      this.subscribed = true
    })
    this.reader.on('nsqd_closed', () => {
      this.closedConns += 1
    })
    this.reader.connect()
  }

  bodies() {
    return this.deliveries.map((d) => d.body)
  }

  ready(timeoutMs = 5000) {
    return waitFor(() => this.subscribed, timeoutMs, 'SUB acknowledged by nsqd')
  }

  // Round-trip on the consumer's own connection(s): nsqd answers commands on
  // a connection in order, so once a PUB sent after an RDY change on that
  // connection is acknowledged, the RDY change has been applied.
  async barrier(timeoutMs = 5000) {
    const conns = this.reader.readerRdy.connections.map((c) => c.conn)
    if (conns.length === 0) throw new Error('consumer has no connection')
    const okFrame = Buffer.from([0, 0, 0, 6, 0, 0, 0, 0, 0x4f, 0x4b])
    await Promise.all(
      conns.map(async (conn) => {
        const socket = conn.conn
        let seen = Buffer.alloc(0)
        const onData = (chunk) => {
          seen = Buffer.concat([seen, chunk])
        }
        socket.on('data', onData)
        try {
          conn.write(wire.pub('nsqjs_barrier', '.'))
          await waitFor(() => seen.includes(okFrame), timeoutMs, 'PUB acknowledged on the consumer connection')
        } finally {
          socket.removeListener('data', onData)
        }
      })
    )
  }

  // nsqjs answers heartbeats internally without an event, so count the
  // _heartbeat_ response frames on the raw socket instead.
  tapHeartbeats() {
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 15, 0, 0, 0, 0]), Buffer.from('_heartbeat_')])
    const conns = this.reader.readerRdy.connections.map((c) => c.conn)
    if (conns.length === 0) throw new Error('consumer has no connection')
    let seen = Buffer.alloc(0)
    conns[0].conn.on('data', (chunk) => {
      seen = Buffer.concat([seen, chunk])
    })
    return () => {
      let n = 0
      for (let i = seen.indexOf(frame); i !== -1; i = seen.indexOf(frame, i + frame.length)) n++
      return n
    }
  }

  close() {
    this.reader.close()
  }
}

// `options` go to nsq.Writer (tls, deflate, authSecret, ...).
class Producer {
  constructor(nsqd, options = {}) {
    this.errors = []
    this.isReady = false
    const [host, port] = nsqd.tcpAddress.split(':')
    this.writer = new nsq.Writer(host, Number(port), options)
    this.writer.on('ready', () => {
      this.isReady = true
    })
    this.writer.on('error', (err) => this.errors.push(String(err)))
    this.writer.connect()
  }

  ready(timeoutMs = 5000) {
    return waitFor(() => this.isReady, timeoutMs, 'Writer connected to nsqd')
  }

  _call(what, fn, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: no response within ${timeoutMs} ms`)), timeoutMs)
      fn((err) => {
        clearTimeout(timer)
        if (err) reject(new Error(`${what} failed: ${err}`))
        else resolve()
      })
    })
  }

  // A single string goes out as PUB, an array of several as MPUB.
  publish(topic, msgs) {
    const what = Array.isArray(msgs) && msgs.length > 1 ? 'MPUB' : 'PUB'
    return this._call(what, (cb) => this.writer.publish(topic, msgs, cb))
  }

  // nsqjs 0.13.0 only accepts the deferred message wrapped in an array.
  deferPublish(topic, msg, delayMs) {
    return this._call('DPUB', (cb) => this.writer.deferPublish(topic, [msg], delayMs, cb))
  }

  close() {
    if (this.writer.conn) this.writer.close()
  }
}

// Defines a test that gets its own nsqd and closes every client it opened.
// Failures carry the tail of nsqd's log, which usually explains them.
// `nsqdArgs` (an array, or a function returning one, called when the test
// starts) are extra nsqd flags.
function nsqTest(name, timeoutMs, fn, nsqdArgs = []) {
  test(name, {timeout: timeoutMs}, async (t) => {
    const nsqd = await startNsqd(t, typeof nsqdArgs === 'function' ? nsqdArgs() : nsqdArgs)
    const clients = []
    const ctx = {
      nsqd,
      consumer(topic, channel, options, handler) {
        const c = new Consumer(nsqd, topic, channel, options, handler)
        clients.push(c)
        return c
      },
      producer(options) {
        const p = new Producer(nsqd, options)
        clients.push(p)
        return p
      },
    }
    try {
      await fn(ctx)
    } catch (err) {
      err.message += `\n----- nsqd stderr (tail) -----\n${nsqd.log.slice(-6000)}`
      throw err
    } finally {
      for (const c of clients) {
        try {
          c.close()
        } catch (e) {
          // closing a half-open client must not mask the test's own result
        }
      }
    }
  })
}

module.exports = {nsqTest, waitFor, expectNothing, Consumer, Producer}
