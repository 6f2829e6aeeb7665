// bench_sink: the Haraka peer of the fakemx benchmarks. Accepts every recipient; at queue time
// discards the message, or with BENCH_STORE_DIR set writes it durably (temp file, fsync, rename,
// directory fsync: the guarantee fakemx gives). Haraka's own per-connection reverse-DNS lookup
// (connection.js, dns.reverse) stays on but goes to the harness's local DNS server (BENCH_DNS).
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const dns = require('node:dns')
const crypto = require('node:crypto')

exports.register = function () {
    // Node's default resolver is shared by every dns.reverse call in this process.
    if (process.env.BENCH_DNS) dns.setServers([process.env.BENCH_DNS])
    this.store_dir = process.env.BENCH_STORE_DIR || ''
    if (this.store_dir) fs.mkdirSync(this.store_dir, { recursive: true })
}

exports.hook_rcpt = function (next) {
    next(OK)
}

function storeDurably(dir, buf, cb) {
    const name = `${Date.now()}.${crypto.randomBytes(6).toString('hex')}.eml`
    const tmp = path.join(dir, `.tmp-${name}`)
    fs.open(tmp, 'w', (err, fd) => {
        if (err) return cb(err)
        fs.write(fd, buf, 0, buf.length, null, (err2) => {
            if (err2) return fs.close(fd, () => cb(err2))
            fs.fsync(fd, (err3) => {
                fs.close(fd, (err4) => {
                    if (err3 || err4) return cb(err3 || err4)
                    fs.rename(tmp, path.join(dir, name), (err5) => {
                        if (err5) return cb(err5)
                        fs.open(dir, 'r', (err6, dfd) => {
                            if (err6) return cb(err6)
                            fs.fsync(dfd, (err7) => fs.close(dfd, () => cb(err7)))
                        })
                    })
                })
            })
        })
    })
}

exports.hook_queue = function (next, connection) {
    const dir = this.store_dir
    if (!dir) return next(OK)
    connection.transaction.message_stream.get_data((buf) => {
        storeDurably(dir, buf, (err) => {
            if (err) return next(DENYSOFT, `store failed: ${err.message}`)
            next(OK)
        })
    })
}
