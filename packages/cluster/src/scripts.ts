/**
 * The Lua scripts of the shared buckets, one per operation, each atomic on Redis. Every script
 * reads the time from `redis.call('TIME')`, never from a host: hosts' clocks differ, and a
 * bucket refilled by the clock of whoever calls it would refill by the skew between them.
 *
 * A bucket keeps the same numbers as the in-memory lane (limit-store.ts in @volley/core): a
 * request level and a token level refilled continuously up to `burstMs` of refill, and their
 * time. A level may go below zero: a lease granted in debt is ready once the refill has paid
 * the debt back (the same schedule GCRA keeps as a "theoretical arrival time"), which lets a
 * request bigger than the burst wait its turn and serves callers in the order they asked.
 *
 *   acquire  settle what the caller owes, then lease requests, tokens and slots, all or nothing
 *   settle   give back requests and tokens (refund, charge, unused lease), set the slots held,
 *            lower levels to what a server said remains, leave the group on close
 *   cooldown nothing is leased until a time, announced on the events channel
 *   learn    limits a server announced, for lanes with none configured, announced likewise
 *   join     count a process in and read what a bucket knows, at start
 *
 * Numbers go back as strings where they may have fractions (Redis turns Lua numbers into
 * integers). Times are milliseconds since 2024-01-01 so that a double keeps microseconds.
 */
import type { Redis } from 'ioredis';

/** Shared by every script: time, bucket arithmetic, members and slot leases. */
const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return (tonumber(t[1]) - 1704067200) * 1000 + tonumber(t[2]) / 1000
end

-- Configured limits come from the caller (negative: none); learned ones from the bucket.
-- Each level has its own time: a call that knows no rate for one must not lose its refill.
local function load(key, cfg_rpm, cfg_tpm, burst, now)
  local h = redis.call('HMGET', key, 'req', 'rts', 'tok', 'tts', 'lrpm', 'ltpm', 'cd')
  local b = { lrpm = tonumber(h[5]), ltpm = tonumber(h[6]), cd = tonumber(h[7]) or 0 }
  if cfg_rpm >= 0 then b.rpm = cfg_rpm else b.rpm = b.lrpm end
  if cfg_tpm >= 0 then b.tpm = cfg_tpm else b.tpm = b.ltpm end
  if b.rpm then
    local elapsed = math.max(0, now - (tonumber(h[2]) or now))
    b.rcap = math.max(1, b.rpm / 60000 * burst)
    b.req = math.min(b.rcap, (tonumber(h[1]) or b.rcap) + elapsed * b.rpm / 60000)
  end
  if b.tpm then
    local elapsed = math.max(0, now - (tonumber(h[4]) or now))
    b.tcap = math.max(1, b.tpm / 60000 * burst)
    b.tok = math.min(b.tcap, (tonumber(h[3]) or b.tcap) + elapsed * b.tpm / 60000)
  end
  return b
end

-- Given back: unused lease, refunds (positive) and charges (negative); never above the burst.
-- A floor is what a server said remains: the level only ever goes down to it.
local function give_back(b, requests, tokens, floor_req, floor_tok)
  if b.rpm then
    b.req = math.min(b.rcap, b.req + requests)
    if floor_req >= 0 then b.req = math.min(b.req, floor_req) end
  end
  if b.tpm then
    b.tok = math.min(b.tcap, b.tok + tokens)
    if floor_tok >= 0 then b.tok = math.min(b.tok, floor_tok) end
  end
end

-- Configured limits, burst and label are kept for \`volley cluster status\` only.
local function save(key, b, now, cfg_rpm, cfg_tpm, max_in_flight, burst, label)
  redis.call('HSET', key, 'burst', burst, 'label', label, 'max', max_in_flight)
  if cfg_rpm >= 0 then redis.call('HSET', key, 'rpm', cfg_rpm) end
  if cfg_tpm >= 0 then redis.call('HSET', key, 'tpm', cfg_tpm) end
  if b.req then redis.call('HSET', key, 'req', b.req, 'rts', now) end
  if b.tok then redis.call('HSET', key, 'tok', b.tok, 'tts', now) end
end

-- Never shortens a TTL: a long cool-down keeps its bucket alive past the usual TTL.
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, math.ceil(ttl)) end
end

local function live_members(key, member, now, ttl, leaving)
  if leaving then redis.call('ZREM', key, member) else redis.call('ZADD', key, now, member) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - ttl)
  return redis.call('ZCARD', key)
end

-- Slots held by others (their leases still live); expired leases are dropped: this is how the
-- slots of a process that died come back.
local function slots_of_others(key, holder, now)
  local all = redis.call('HGETALL', key)
  local used = 0
  for i = 1, #all, 2 do
    if all[i] ~= holder then
      local sep = string.find(all[i + 1], ':', 1, true)
      local count = tonumber(string.sub(all[i + 1], 1, sep - 1))
      if tonumber(string.sub(all[i + 1], sep + 1)) < now then
        redis.call('HDEL', key, all[i])
      else
        used = used + count
      end
    end
  end
  return used
end

local function hold_slots(key, holder, count, now, ttl)
  if count > 0 then
    redis.call('HSET', key, holder, string.format('%d:%.0f', count, now + ttl))
  else
    redis.call('HDEL', key, holder)
  end
end

local function reply_tail(b, now, members, contended)
  return { members, contended, tostring(math.max(0, b.cd - now)), tostring(b.lrpm or -1),
    tostring(b.ltpm or -1) }
end
`;

/**
 * KEYS bucket, slots, members. ARGV member, holder, rpm, tpm, maxInFlight, burstMs,
 * needRequests, wantRequests, needTokens, wantTokens, needSlots, wantSlots, heldSlots,
 * returnRequests, tokenDelta, floorRequests, floorTokens, horizonMs, memberTtlMs, slotTtlMs,
 * keyTtlMs, label.
 *
 * Grants between need and want of each (all of them together, or nothing): as much as the
 * bucket holds now, or, when it holds less than the need, the whole want in debt, ready once
 * refilled. Refuses while cooling down, while the slots are taken, or when the debt already
 * queued is longer than `horizonMs`.
 *
 * Returns granted (1|0), requests, tokens, slots, wait ms (-1: slots are taken, poll), then
 * members, contended, cool-down ms, learned rpm, learned tpm (-1: none).
 */
const ACQUIRE = `${PRELUDE}
local now = now_ms()
local member, holder = ARGV[1], ARGV[2]
local cfg_rpm, cfg_tpm, max_in_flight, burst =
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local need_r, want_r, need_t, want_t =
  tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local need_s, want_s, held_s = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local horizon, member_ttl, slot_ttl, key_ttl =
  tonumber(ARGV[18]), tonumber(ARGV[19]), tonumber(ARGV[20]), tonumber(ARGV[21])

local b = load(KEYS[1], cfg_rpm, cfg_tpm, burst, now)
give_back(b, tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17]))
local members = live_members(KEYS[3], member, now, member_ttl, false)

local granted, g_r, g_t, g_s, wait = 1, 0, 0, 0, 0
if b.cd > now then
  granted, wait = 0, b.cd - now
elseif max_in_flight >= 0 and need_s > 0 then
  local free = max_in_flight - slots_of_others(KEYS[2], holder, now) - held_s
  if free < need_s then
    granted, wait = 0, -1
    redis.call('HSET', KEYS[1], 'sw', now + 1000)
  else
    g_s = math.min(want_s, free)
  end
end
if granted == 1 then
  g_r, g_t = want_r, want_t
  local has_r = (not b.rpm) or b.req >= need_r
  local has_t = (not b.tpm) or b.tok >= need_t
  if has_r and has_t then
    if b.rpm then g_r = math.max(need_r, math.min(want_r, math.floor(b.req))) end
    if b.tpm then g_t = math.max(need_t, math.min(want_t, b.tok)) end
  else
    local queued = 0
    if b.rpm and b.req < 0 then queued = math.max(queued, -b.req * 60000 / b.rpm) end
    if b.tpm and b.tok < 0 then queued = math.max(queued, -b.tok * 60000 / b.tpm) end
    if queued > horizon then granted, wait, g_r, g_t, g_s = 0, queued - horizon, 0, 0, 0 end
  end
end
if granted == 1 then
  if b.rpm then
    b.req = b.req - g_r
    if b.req < 0 then wait = math.max(wait, -b.req * 60000 / b.rpm) end
  end
  if b.tpm then
    b.tok = b.tok - g_t
    if b.tok < 0 then wait = math.max(wait, -b.tok * 60000 / b.tpm) end
  end
end
if max_in_flight >= 0 then hold_slots(KEYS[2], holder, held_s + g_s, now, slot_ttl) end
local contended = 0
if (tonumber(redis.call('HGET', KEYS[1], 'sw')) or 0) > now then contended = 1 end
save(KEYS[1], b, now, cfg_rpm, cfg_tpm, max_in_flight, burst, ARGV[22])
local ttl = math.max(key_ttl, b.cd - now + 1000)
for _, key in ipairs(KEYS) do extend(key, ttl) end
local reply = { granted, g_r, tostring(g_t), g_s, tostring(wait) }
for _, v in ipairs(reply_tail(b, now, members, contended)) do table.insert(reply, v) end
return reply
`;

/**
 * KEYS bucket, slots, members. ARGV member, holder, rpm, tpm, maxInFlight, burstMs,
 * returnRequests, tokenDelta, heldSlots, floorRequests, floorTokens, leaving (1|0),
 * memberTtlMs, slotTtlMs, keyTtlMs, label.
 *
 * Returns members, contended, cool-down ms, learned rpm, learned tpm.
 */
const SETTLE = `${PRELUDE}
local now = now_ms()
local member, holder = ARGV[1], ARGV[2]
local cfg_rpm, cfg_tpm, max_in_flight, burst =
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local leaving = ARGV[12] == '1'
local member_ttl, slot_ttl, key_ttl = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])

local b = load(KEYS[1], cfg_rpm, cfg_tpm, burst, now)
give_back(b, tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[10]), tonumber(ARGV[11]))
local members = live_members(KEYS[3], member, now, member_ttl, leaving)
if max_in_flight >= 0 then
  slots_of_others(KEYS[2], holder, now)
  hold_slots(KEYS[2], holder, tonumber(ARGV[9]), now, slot_ttl)
end
local contended = 0
if (tonumber(redis.call('HGET', KEYS[1], 'sw')) or 0) > now then contended = 1 end
save(KEYS[1], b, now, cfg_rpm, cfg_tpm, max_in_flight, burst, ARGV[16])
local ttl = math.max(key_ttl, b.cd - now + 1000)
for _, key in ipairs(KEYS) do extend(key, ttl) end
return reply_tail(b, now, members, contended)
`;

/**
 * KEYS bucket. ARGV durationMs, channel, group id, keyTtlMs. Publishes `<group>|c|<ms>` when
 * the cool-down grew. Returns the cool-down left, in ms.
 */
const COOLDOWN = `${PRELUDE}
local now = now_ms()
local before = tonumber(redis.call('HGET', KEYS[1], 'cd')) or 0
local untl = math.max(before, now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'cd', untl)
extend(KEYS[1], math.max(tonumber(ARGV[4]), untl - now + 1000))
if untl > before then
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. '|c|' .. string.format('%.0f', untl - now))
end
return tostring(untl - now)
`;

/**
 * KEYS bucket. ARGV learned rpm, learned tpm (-1: not learned now), channel, group id,
 * keyTtlMs. Publishes `<group>|l|<rpm>|<tpm>` when either changed. Returns 1 if changed.
 */
const LEARN = `${PRELUDE}
local changed = 0
local fields = { 'lrpm', 'ltpm' }
for i = 1, 2 do
  local value = tonumber(ARGV[i])
  if value >= 0 and tonumber(redis.call('HGET', KEYS[1], fields[i])) ~= value then
    redis.call('HSET', KEYS[1], fields[i], value)
    changed = 1
  end
end
extend(KEYS[1], tonumber(ARGV[5]))
if changed == 1 then
  local h = redis.call('HMGET', KEYS[1], 'lrpm', 'ltpm')
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. '|l|' .. (h[1] or '-1') .. '|' .. (h[2] or '-1'))
end
return changed
`;

/**
 * KEYS bucket, members. ARGV member, memberTtlMs, keyTtlMs. Counts the member in and reads what
 * the bucket knows, changing no level. Returns members, contended, cool-down ms, learned rpm,
 * learned tpm.
 */
const JOIN = `${PRELUDE}
local now = now_ms()
local h = redis.call('HMGET', KEYS[1], 'lrpm', 'ltpm', 'cd')
local b = { lrpm = tonumber(h[1]), ltpm = tonumber(h[2]), cd = tonumber(h[3]) or 0 }
local members = live_members(KEYS[2], ARGV[1], now, tonumber(ARGV[2]), false)
extend(KEYS[2], tonumber(ARGV[3]))
return reply_tail(b, now, members, 0)
`;

/** The reply tail every bucket script ends with. */
export interface BucketNews {
  members: number;
  contended: boolean;
  cooldownMs: number;
  learnedRpm: number | undefined;
  learnedTpm: number | undefined;
}

export interface AcquireReply extends BucketNews {
  granted: boolean;
  requests: number;
  tokens: number;
  slots: number;
  /** Until the lease may be used (granted), or until asking again makes sense; -1: poll. */
  waitMs: number;
}

type Reply = Array<string | number>;

function news(reply: Reply, at: number): BucketNews {
  const learned = (value: string | number | undefined): number | undefined => {
    const n = Number(value);
    return n >= 0 ? n : undefined;
  };
  return {
    members: Number(reply[at]),
    contended: Number(reply[at + 1]) === 1,
    cooldownMs: Number(reply[at + 2]),
    learnedRpm: learned(reply[at + 3]),
    learnedTpm: learned(reply[at + 4]),
  };
}

export function parseAcquire(reply: Reply): AcquireReply {
  return {
    granted: Number(reply[0]) === 1,
    requests: Number(reply[1]),
    tokens: Number(reply[2]),
    slots: Number(reply[3]),
    waitMs: Number(reply[4]),
    ...news(reply, 5),
  };
}

export function parseSettle(reply: Reply): BucketNews {
  return news(reply, 0);
}

/** The scripts as commands of `redis` (EVALSHA, falling back to EVAL after a Redis restart). */
export interface ScriptCommands {
  volleyAcquire(...args: Array<string | number>): Promise<Reply>;
  volleySettle(...args: Array<string | number>): Promise<Reply>;
  volleyCooldown(...args: Array<string | number>): Promise<string>;
  volleyLearn(...args: Array<string | number>): Promise<number>;
  volleyJoin(...args: Array<string | number>): Promise<Reply>;
}

export function defineScripts(redis: Redis): Redis & ScriptCommands {
  redis.defineCommand('volleyAcquire', { numberOfKeys: 3, lua: ACQUIRE });
  redis.defineCommand('volleySettle', { numberOfKeys: 3, lua: SETTLE });
  redis.defineCommand('volleyCooldown', { numberOfKeys: 1, lua: COOLDOWN });
  redis.defineCommand('volleyLearn', { numberOfKeys: 1, lua: LEARN });
  redis.defineCommand('volleyJoin', { numberOfKeys: 2, lua: JOIN });
  return redis as Redis & ScriptCommands;
}

/** Milliseconds since the scripts' epoch, from a `TIME` reply: what `ts` fields hold. */
export function scriptTime(time: [string, string]): number {
  return (Number(time[0]) - 1704067200) * 1000 + Number(time[1]) / 1000;
}
