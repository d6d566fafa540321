/**
 * Names in Redis. Every key of one shared bucket sits under one hash tag, `{<prefix>:g:<id>}`,
 * so that a script may touch all of them at once on Redis Cluster as on a single server:
 *
 *   {volley:g:<id>}:bucket    hash: request and token levels, their time, learned limits, cool-down
 *   {volley:g:<id>}:slots     hash: holder -> "<slots>:<expires at>", the in-flight slot leases
 *   {volley:g:<id>}:members   sorted set: member -> last seen (Redis time), the live processes
 *   volley:member:<member>    string with a TTL: one process's heartbeat (host, pid, load)
 *   volley:events             pub/sub channel: cool-downs and learned limits, to every process at once
 *
 * A bucket is named by the endpoint's origin, the model and a fingerprint of the API key, or by
 * an explicit `limitGroup`. The fingerprint is an HMAC-SHA-256 keyed by the API key itself over a
 * fixed context string: it cannot be reversed or checked against guesses without the key, and
 * it never leaves this process except inside a further hash (the bucket id).
 */
import { createHash, createHmac } from 'node:crypto';
import { ErrorCode, VolleyError } from '@volley/core';

/** Changing it re-keys every bucket: a new version string, not an edit. */
const FINGERPRINT_CONTEXT = 'volley/limit-group/api-key/v1';

const PREFIX = /^[A-Za-z0-9._:-]{1,64}$/;
const GROUP_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** What names one shared bucket. */
export interface GroupIdentity {
  /** `https://api.openai.com/v1` or any base URL; only its origin counts. */
  baseUrl: string;
  /** The model of a model lane; undefined for the endpoint's own lane (every other model). */
  model: string | undefined;
  apiKey: string | undefined;
  /** An explicit name chosen by the user; replaces origin and key. */
  limitGroup: string | undefined;
}

/** A bucket's id (the part inside the hash tag) and a label fit to show (no secret in it). */
export interface LaneGroup {
  id: string;
  label: string;
}

export function checkPrefix(name: string, prefix: string): string {
  if (!PREFIX.test(prefix)) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name} must be 1-64 letters, digits or . _ : -, got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

export function checkGroupName(name: string, group: string): string {
  if (!GROUP_NAME.test(group)) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name} must be 1-64 letters, digits or . _ -, got ${JSON.stringify(group)}`,
    );
  }
  return group;
}

/** The API key's fingerprint: keyed by the key, over a fixed context. */
export function keyFingerprint(apiKey: string): string {
  return createHmac('sha256', apiKey).update(FINGERPRINT_CONTEXT).digest('hex');
}

/** The bucket of one lane; `option` names the endpoint in errors (`options.endpoints[0]`). */
export function laneGroup(identity: GroupIdentity, option = 'endpoint'): LaneGroup {
  const model = identity.model ?? '*';
  if (identity.limitGroup !== undefined) {
    const name = checkGroupName(`${option}.limitGroup`, identity.limitGroup);
    return {
      id: identity.model === undefined ? `n.${name}` : `n.${name}.${sha256(model).slice(0, 16)}`,
      label: identity.model === undefined ? name : `${name} ${model}`,
    };
  }
  const origin = new URL(identity.baseUrl).origin;
  const key =
    identity.apiKey === undefined || identity.apiKey === ''
      ? 'no-key'
      : keyFingerprint(identity.apiKey);
  return {
    id: sha256(`${origin}\n${model}\n${key}`).slice(0, 32),
    label: `${origin} ${model}`,
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export interface GroupKeys {
  bucket: string;
  slots: string;
  members: string;
}

export function groupKeys(prefix: string, id: string): GroupKeys {
  const tag = `{${prefix}:g:${id}}`;
  return { bucket: `${tag}:bucket`, slots: `${tag}:slots`, members: `${tag}:members` };
}

export function memberKey(prefix: string, member: string): string {
  return `${prefix}:member:${member}`;
}

export function eventsChannel(prefix: string): string {
  return `${prefix}:events`;
}

/** `SCAN MATCH` patterns of what `volley cluster status` lists. */
export function statusPatterns(prefix: string): { members: string; buckets: string } {
  return { members: `${prefix}:member:*`, buckets: `{${prefix}:g:*}:bucket` };
}
