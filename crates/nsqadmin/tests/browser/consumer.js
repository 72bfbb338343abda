'use strict'

// A minimal NSQ consumer speaking protocol V2 over a raw TCP socket: enough
// to appear as a client in nsqd's stats and to hold messages in flight.

const net = require('node:net')

const FRAME_RESPONSE = 0
const FRAME_ERROR = 1
const FRAME_MESSAGE = 2

class Consumer {
  // opts: {address: 'host:port', topic, channel, clientId, rdy, finish: bool}
  constructor(opts) {
    this.opts = {rdy: 1, finish: false, ...opts}
    this.messages = []
    this.responses = []
    this.errors = []
    this.buf = Buffer.alloc(0)
    this.waiters = []
  }

  connect() {
    const [host, port] = this.opts.address.split(/:(?=\d+$)/)
    return new Promise((resolve, reject) => {
      this.sock = net.connect({host, port: Number(port)}, async () => {
        try {
          this.sock.write('  V2')
          const identify = JSON.stringify({
            client_id: this.opts.clientId,
            hostname: this.opts.clientId + '.test',
            user_agent: 'nsqadmin-browser-test/1.0',
            feature_negotiation: false,
            msg_timeout: 600000,
            heartbeat_interval: 30000,
          })
          const len = Buffer.alloc(4)
          len.writeUInt32BE(Buffer.byteLength(identify))
          this.sock.write(Buffer.concat([Buffer.from('IDENTIFY\n'), len, Buffer.from(identify)]))
          await this.response('IDENTIFY')
          this.sock.write(`SUB ${this.opts.topic} ${this.opts.channel}\n`)
          await this.response('SUB')
          this.sock.write(`RDY ${this.opts.rdy}\n`)
          resolve(this)
        } catch (err) {
          reject(err)
        }
      })
      this.sock.on('data', (chunk) => this.onData(chunk))
      this.sock.on('error', (err) => {
        this.errors.push(err.message)
        this.flushWaiters(err)
        reject(err)
      })
    })
  }

  response(what) {
    return new Promise((resolve, reject) => this.waiters.push({what, resolve, reject}))
  }

  flushWaiters(err) {
    for (const w of this.waiters.splice(0)) w.reject(err)
  }

  onData(chunk) {
    this.buf = Buffer.concat([this.buf, chunk])
    while (this.buf.length >= 4) {
      const size = this.buf.readUInt32BE(0)
      if (this.buf.length < 4 + size) return
      const type = this.buf.readUInt32BE(4)
      const data = this.buf.subarray(8, 4 + size)
      this.buf = this.buf.subarray(4 + size)
      if (type === FRAME_RESPONSE) {
        const text = data.toString()
        if (text === '_heartbeat_') {
          this.sock.write('NOP\n')
        } else {
          this.responses.push(text)
          const w = this.waiters.shift()
          if (w) w.resolve(text)
        }
      } else if (type === FRAME_ERROR) {
        const text = data.toString()
        this.errors.push(text)
        const w = this.waiters.shift()
        if (w) w.reject(new Error(`${w.what}: ${text}`))
      } else if (type === FRAME_MESSAGE) {
        const id = data.subarray(10, 26).toString()
        this.messages.push({id, body: data.subarray(26).toString()})
        if (this.opts.finish) this.sock.write(`FIN ${id}\n`)
      }
    }
  }

  close() {
    if (this.sock) this.sock.destroy()
  }
}

async function consume(opts) {
  const c = new Consumer(opts)
  await c.connect()
  return c
}

module.exports = {Consumer, consume}
