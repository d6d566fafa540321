/**
 * The Lua scripts of a batch spread over a cluster. The queue is a Redis stream read through a
 * consumer group: a chunk a worker reads stays in the group's pending list under that worker's
 * name until it is acknowledged, and its idle time is its lease. A worker that lives renews the
 * lease (XCLAIM to itself, which resets the idle time); one that died or froze stops renewing,
 * and after `leaseMs` another worker takes the chunk over with XAUTOCLAIM.
 *
 * Ownership is checked inside each script (XPENDING names the chunk's owner) so that a worker
 * that froze past its lease and woke up (SIGSTOP, then SIGCONT) can neither take its chunk back
 * by renewing, nor acknowledge a chunk someone else now runs, nor start more of its lines.
 *
 *   start    owner only: mark lines `s` (sent) before sending them; returns the lines already
 *            answered (skip them) and those another worker had sent (re-sent: maybe billed twice)
 *   renew    owner only: reset the idle time
 *   release  owner only: make the chunk claimable at once (SIGTERM, an endpoint out)
 *   finish   owner only: acknowledge and delete the chunk and its lines' marks
 *   report   anyone, while the batch exists: results of lines not yet answered go to the results
 *            stream, the rest are counted as duplicates (the coordinator drops them again anyway)
 *   open     coordinator: create the batch (or adopt it on --resume), under a new epoch
 *   beat     coordinator: refresh every TTL; says when the batch is gone (Redis lost its data)
 *   register / live   the registry of batches whose coordinator is alive, on Redis's clock
 */
import type { Redis } from 'ioredis';

const OWNER = `
local function owner(work, group, id)
  local p = redis.pcall('XPENDING', work, group, id, id, 1)
  if type(p) ~= 'table' or p.err or #p == 0 then return false end
  return p[1][2]
end
`;

const NOW = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// KEYS: work, lines. ARGV: group, consumer, chunk id, ttl ms, line...
const START = `${OWNER}
if owner(KEYS[1], ARGV[1], ARGV[3]) ~= ARGV[2] then return {0, {}, {}} end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
local answered, resent = {}, {}
for i = 5, #ARGV do
  local mark = redis.call('HGET', KEYS[2], ARGV[i])
  if mark == 'r' then
    answered[#answered + 1] = ARGV[i]
  else
    if mark == 's' then resent[#resent + 1] = ARGV[i] end
    redis.call('HSET', KEYS[2], ARGV[i], 's')
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, answered, resent}
`;

// KEYS: work. ARGV: group, consumer, chunk id.
const RENEW = `${OWNER}
if owner(KEYS[1], ARGV[1], ARGV[3]) ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
`;

// KEYS: work, lines. ARGV: group, consumer, chunk id, line never sent... An idle time of ~30
// years: past any lease. Lines this worker marked but never sent lose their mark, so the worker
// that takes the chunk does not count them as maybe billed twice.
const RELEASE = `${OWNER}
if owner(KEYS[1], ARGV[1], ARGV[3]) ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', 1000000000000, 'JUSTID')
for i = 4, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == 's' then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
return 1
`;

// KEYS: work, lines. ARGV: group, consumer, chunk id, line... The chunk is gone, so no one can
// take it over any more: its lines' marks can go too (Redis holds only chunks still out).
const FINISH = `${OWNER}
if owner(KEYS[1], ARGV[1], ARGV[3]) ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if #ARGV > 3 then redis.call('HDEL', KEYS[2], unpack(ARGV, 4)) end
return 1
`;

// KEYS: lines, results, meta. ARGV: ttl ms, worker, chunk ids (comma-separated: one report may
// carry several chunks of the batch), extra billed calls, then line,
// payload... -1 when the batch is gone (finished, or Redis lost it): nothing is written, so a
// worker waking up late cannot bring back keys of a batch that has ended.
const REPORT = `
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
local accepted, duplicates = {}, 0
for i = 5, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == 'r' then
    duplicates = duplicates + 1
  else
    redis.call('HSET', KEYS[1], ARGV[i], 'r')
    accepted[#accepted + 1] = ARGV[i + 1]
  end
end
if #accepted > 0 or tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[2], '*', 'w', ARGV[2], 'c', ARGV[3], 'x', ARGV[4], 'n', duplicates,
    'd', '[' .. table.concat(accepted, ',') .. ']')
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return duplicates
`;

// KEYS: meta, work. ARGV: epoch, ttl ms, then field, value... Returns the previous epoch or false.
const OPEN = `
local previous = redis.call('HGET', KEYS[1], 'epoch')
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], unpack(ARGV, 3))
redis.pcall('XGROUP', 'CREATE', KEYS[2], 'w', '0', 'MKSTREAM')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return previous
`;

// KEYS: meta, work, lines, results. ARGV: epoch, ttl ms. 1 alive, 0 gone, -1 adopted by another.
const BEAT = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return 0 end
if epoch ~= ARGV[1] then return -1 end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
`;

// KEYS: registry. ARGV: batch, live ms (0: leave).
const REGISTER = `${NOW}
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
if redis.call('ZCARD', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], 3600000) end
return 1
`;

// KEYS: registry.
const LIVE = `${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], now_ms(), '+inf')
`;

export interface WorkScriptCommands {
  volleyWorkStart(
    work: string,
    lines: string,
    group: string,
    consumer: string,
    chunk: string,
    ttlMs: number,
    ...lineNos: string[]
  ): Promise<[number, string[], string[]]>;
  volleyWorkRenew(work: string, group: string, consumer: string, chunk: string): Promise<number>;
  volleyWorkRelease(
    work: string,
    lines: string,
    group: string,
    consumer: string,
    chunk: string,
    ...unsent: string[]
  ): Promise<number>;
  volleyWorkFinish(
    work: string,
    lines: string,
    group: string,
    consumer: string,
    chunk: string,
    ...lineNos: string[]
  ): Promise<number>;
  volleyWorkReport(
    lines: string,
    results: string,
    meta: string,
    ttlMs: number,
    worker: string,
    chunk: string,
    extraBilled: number,
    ...pairs: string[]
  ): Promise<number>;
  volleyBatchOpen(
    meta: string,
    work: string,
    epoch: string,
    ttlMs: number,
    ...fields: string[]
  ): Promise<string | null>;
  volleyBatchBeat(
    meta: string,
    work: string,
    lines: string,
    results: string,
    epoch: string,
    ttlMs: number,
  ): Promise<number>;
  volleyBatchRegister(registry: string, batch: string, liveMs: number): Promise<number>;
  volleyBatchLive(registry: string): Promise<string[]>;
}

/** Adds the scripts to a client (idempotent per client). */
export function defineWorkScripts<R extends Redis>(redis: R): R & WorkScriptCommands {
  if (!('volleyWorkStart' in redis)) {
    redis.defineCommand('volleyWorkStart', { numberOfKeys: 2, lua: START });
    redis.defineCommand('volleyWorkRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('volleyWorkRelease', { numberOfKeys: 2, lua: RELEASE });
    redis.defineCommand('volleyWorkFinish', { numberOfKeys: 2, lua: FINISH });
    redis.defineCommand('volleyWorkReport', { numberOfKeys: 3, lua: REPORT });
    redis.defineCommand('volleyBatchOpen', { numberOfKeys: 2, lua: OPEN });
    redis.defineCommand('volleyBatchBeat', { numberOfKeys: 4, lua: BEAT });
    redis.defineCommand('volleyBatchRegister', { numberOfKeys: 1, lua: REGISTER });
    redis.defineCommand('volleyBatchLive', { numberOfKeys: 1, lua: LIVE });
  }
  return redis as R & WorkScriptCommands;
}
