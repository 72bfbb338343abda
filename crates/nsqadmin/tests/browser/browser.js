'use strict'

// Headless Chromium through playwright-core, and small page utilities.

const fs = require('node:fs')
const path = require('node:path')
const {chromium} = require('playwright-core')
const {REPO_ROOT, waitFor} = require('./cluster')

const ARTIFACTS = process.env.BROWSER_ARTIFACTS || path.join(REPO_ROOT, 'target', 'browser-artifacts')
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'

const DESKTOP = {width: 1280, height: 800}
const PHONE = {width: 390, height: 844}

// Launches Chromium; playwright gives every launch a fresh temporary profile
// (user-data-dir), removed again by close().
async function launch() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM} (scripts/browser-test.sh installs it, or set CHROMIUM_BIN)`)
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

// A page in its own context; records uncaught errors so tests can assert none happened.
async function openPage(browser, {viewport = DESKTOP, headers, isMobile = false} = {}) {
  const context = await browser.newContext({
    viewport,
    deviceScaleFactor: 1,
    isMobile,
    hasTouch: isMobile,
    extraHTTPHeaders: headers,
    locale: 'en-US',
    timezoneId: 'UTC',
  })
  const page = await context.newPage()
  page.setDefaultTimeout(15000)
  page.pageErrors = []
  page.consoleErrors = []
  page.on('pageerror', (err) => page.pageErrors.push(err.message))
  page.on('console', (msg) => {
    // A failed API call (e.g. an expected 403) is logged by Chromium itself; only script errors count.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) page.consoleErrors.push(msg.text())
  })
  page.closeAll = () => context.close()
  return page
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, {recursive: true})
  const file = path.join(ARTIFACTS, `${name}.png`)
  await page.screenshot({path: file, fullPage: true})
  return file
}

// Wait until the app has rendered data (no loading spinner) for the current route.
async function settled(page) {
  await page.waitForSelector('main .page')
  await page.waitForFunction(() => !document.querySelector('main .loading'))
}

// Text of the cells of the table row whose data-row is `key`, inside `scope`.
async function rowCells(page, scope, key) {
  return page.evaluate(([s, k]) => {
    const root = document.querySelector(s)
    if (!root) return null
    const row = Array.from(root.querySelectorAll('tr[data-row]')).find((r) => r.getAttribute('data-row') === k)
    return row ? Array.from(row.children).map((c) => c.textContent.trim()) : null
  }, [scope, key])
}

// The column index of header `label` in the first table inside `scope`.
async function columnIndex(page, scope, label) {
  return page.evaluate(([s, l]) => {
    const ths = Array.from(document.querySelectorAll(`${s} thead th`))
    return ths.findIndex((th) => th.textContent.trim() === l)
  }, [scope, label])
}

const digits = (s) => Number(String(s).replace(/[^0-9]/g, ''))

// Poll a value computed in the page.
function pageWait(page, what, fn, arg, timeoutMs = 15000) {
  return waitFor(what, () => page.evaluate(fn, arg), timeoutMs)
}

module.exports = {ARTIFACTS, DESKTOP, PHONE, launch, openPage, shot, settled, rowCells, columnIndex, digits, pageWait}
