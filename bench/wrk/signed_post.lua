-- wrk script: POST a signed HotGlue webhook, each request a new job stage.
--
--   wrk -s bench/wrk/signed_post.lua URL -- TEMPLATES_FILE SECRET NONCE
--
-- TEMPLATES_FILE holds one compact JSON body per line; "@@ID@@" in a body is replaced
-- by an id unique to the request (thread, counter, run nonce), so s3_root is unique
-- and every delivery is a first delivery. X-Hub-Signature is the HMAC-SHA1 of the
-- exact bytes sent, computed with OpenSSL's libcrypto through LuaJIT's FFI (wrk links
-- libcrypto already), so signing costs the client microseconds, not the server.
-- done() prints one line "BENCH_JSON {...}" for the harness to read.

local ffi = require("ffi")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha1(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]]
local crypto
if pcall(function() return ffi.C.HMAC end) then
  crypto = ffi.C
else
  crypto = ffi.load("libcrypto.so.3")
end

local HEX = {}
for i = 0, 255 do HEX[i] = string.format("%02x", i) end
local digest = ffi.new("unsigned char[20]")
local digest_len = ffi.new("unsigned int[1]")
local sha1 = crypto.EVP_sha1()

local function hmac_sha1_hex(key, data)
  crypto.HMAC(sha1, key, #key, data, #data, digest, digest_len)
  local out = {}
  for i = 0, 19 do out[i + 1] = HEX[digest[i]] end
  return table.concat(out)
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local templates = {}
local secret, nonce
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

local function split(text, mark)
  local parts, start = {}, 1
  while true do
    local i, j = string.find(text, mark, start, true)
    if not i then
      table.insert(parts, string.sub(text, start))
      return parts
    end
    table.insert(parts, string.sub(text, start, i - 1))
    start = j + 1
  end
end

function init(args)
  local path = args[1]
  secret, nonce = args[2], args[3]
  for line in io.lines(path) do
    if #line > 0 then table.insert(templates, split(line, "@@ID@@")) end
  end
  assert(#templates > 0, "no templates in " .. path)
end

function request()
  counter = counter + 1
  local parts = templates[(counter - 1) % #templates + 1]
  local body = table.concat(parts, nonce .. "-" .. tid .. "-" .. counter)
  headers["X-Hub-Signature"] = hmac_sha1_hex(secret, body)
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
