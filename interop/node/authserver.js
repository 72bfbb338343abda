'use strict'

// A tiny NSQ auth server (the --auth-http-address side) on 127.0.0.1:0.
// GOOD_SECRET gets every permission on every topic/channel (identity "u"),
// NO_PERMS_SECRET gets an empty authorization list, anything else a 403.
// Every request is recorded so tests can check what nsqd sent.

const http = require('node:http')

const GOOD_SECRET = 'good-secret'
const NO_PERMS_SECRET = 'no-perms-secret'

const ALLOW_ALL = {
  ttl: 3600,
  identity: 'u',
  identity_url: '',
  authorizations: [{topic: '.*', channels: ['.*'], permissions: ['subscribe', 'publish']}],
}
const NO_AUTHORIZATIONS = {ttl: 3600, identity: 'nobody', identity_url: '', authorizations: []}

class AuthServer {
  constructor() {
    this.requests = []
    this.server = http.createServer((req, res) => {
      let raw = ''
      req.setEncoding('utf8')
      req.on('data', (chunk) => {
        raw += chunk
      })
      req.on('end', () => {
        const url = new URL(req.url, 'http://127.0.0.1')
        let body = null
        if (req.method === 'POST' && raw) {
          try {
            body = JSON.parse(raw)
          } catch (e) {
            body = {_unparsable: raw}
          }
        }
        const query = {}
        for (const [k, v] of url.searchParams) (query[k] = query[k] || []).push(v)
        const record = {method: req.method, path: url.pathname, query, headers: req.headers, body}
        this.requests.push(record)
        const fields = req.method === 'POST' ? body || {} : query
        const secret = url.pathname === '/auth' && Array.isArray(fields.secret) ? fields.secret[0] : null
        let code = 403
        let reply = {message: 'FORBIDDEN'}
        if (secret === GOOD_SECRET) [code, reply] = [200, ALLOW_ALL]
        else if (secret === NO_PERMS_SECRET) [code, reply] = [200, NO_AUTHORIZATIONS]
        const data = JSON.stringify(reply)
        res.writeHead(code, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data)})
        res.end(data)
      })
    })
  }

  get address() {
    return `127.0.0.1:${this.server.address().port}`
  }

  start() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(0, '127.0.0.1', () => resolve(this))
    })
  }

  stop() {
    return new Promise((resolve) => {
      this.server.closeAllConnections()
      this.server.close(() => resolve())
    })
  }
}

module.exports = {AuthServer, GOOD_SECRET, NO_PERMS_SECRET}
