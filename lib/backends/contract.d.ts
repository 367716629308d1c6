// What a backend is to the cache (lib/cache/cached-store.js): where sessions are kept while they
// are not held in memory. `npm run lint` checks every backend and the command-line tool's
// places against these types (tsc --checkJs).

import type { HeldIndex, SweepSummary } from '../../index';

/** A stored copy, as loaded. */
export interface Loaded {
  json: string;
  /** The version it was stored as, for backends that keep versions (Redis); else 0. */
  version: number;
  /** How it was stored: `plain`, `zstd`, `aes-256-gcm` or `zstd+aes-256-gcm`. */
  encoding: string;
  /** Bytes stored (the file's or the Redis value's length). */
  storedBytes: number;
}

/** One session's JSON to store. */
export interface WriteItem {
  id: string;
  json: string;
  /**
   * What the JSON is based on, for backends that keep versions: the version its copy was loaded
   * or last stored as, null for a session created here, -1 for whatever is stored.
   */
  base: number | null;
}

/** Why an item was not stored: `code` is an errno name (`ENOSPC`) or an `ERR_*` code. */
export interface WriteFailure {
  code: string;
  message: string;
  /** For `ERR_SESSION_CONFLICT`: the newer version stored, and its JSON. */
  version?: number | null;
  json?: string | null;
}

/** How a write ended: stored (as `version`, 0 where none is kept), or not, for `failure`. */
export type WriteResult = { version: number; failure?: undefined } | { failure: WriteFailure };

/** A failure of one item of a batch, told by id. */
export interface Failure {
  id: string;
  code: string;
  message: string;
}

/** The expiry limits in milliseconds; null or 0 disables one. */
export interface ExpiryPolicy {
  staleTimeout: number | null;
  maxToLive: number | null;
}

/**
 * Sessions kept somewhere other than memory. Every method that can fail throws (or rejects)
 * with an error whose `code` says why; none blocks the JavaScript thread for long but `load`,
 * `import`, `remove`, `removeCorrupt` and `writeNow`, which must answer before they return.
 */
export interface SessionBackend {
  /** The ids stored, but those `held` holds (every id, without it). */
  ids(held?: HeldIndex): string[];
  /**
   * The stored copy, or null when there is none or the id cannot name one; `ERR_CORRUPT_SESSION`
   * for a copy that is not a session.
   */
  load(id: string): Loaded | null;
  /**
   * `load`, without blocking the JavaScript thread on the disk or the network: for a request
   * whose session is loaded before the proxy reads it.
   */
  loadLater(id: string): Promise<Loaded | null>;
  /** The caller could not revive the copy `load` just returned: it counts as corrupt. */
  rejectLoaded(id: string): void;
  /**
   * Deletes a copy found corrupt, only as it was found: `copy` (loaded, then rejected), or, when
   * null, the one `load` refused itself. True when it was deleted.
   */
  removeCorrupt(id: string, copy: Loaded | null): boolean;
  /**
   * Stores JSON from outside before returning, whatever is stored, after checking that `load`
   * accepts it (`ERR_INVALID_SESSION`); a bad id throws a TypeError. Returns the version stored.
   */
  import(id: string, json: string): number;
  /**
   * Throws what `import` would refuse of these contents, storing nothing: for an import stored
   * in the background (by `queueWrites`), whose caller must hear of bad input at once.
   */
  checkImport(id: string, json: string): void;
  /** Stores every item before returning (at shutdown): one result per item, in order. */
  writeNow(items: WriteItem[]): WriteResult[];
  /**
   * Stores the items in the background, in order; `settle` is called once for each, with its
   * id and the version stored, or its failure. A later `import`, `remove` or write of an id
   * supersedes an earlier write of it (settled as stored: what it stored is outdated anyway).
   * The backend keeps no reference to the JSON once it is handed over.
   */
  queueWrites(
    items: WriteItem[],
    settle: (id: string, failure: WriteFailure | undefined, version: number) => void,
  ): void;
  /** Ids with a background write queued or under way. */
  readonly writesPending: number;
  isWriting(id: string): boolean;
  /** Resolves once no background write is queued or under way. */
  whenWritten(): Promise<void>;
  /** Calls `listener` after each report of background writes; returns its removal. */
  onWritesReported(listener: () => void): () => void;
  /** True when a stored copy was deleted; throws when it cannot be, and nothing changes. */
  remove(id: string): boolean;
  /** Deletes stored copies in the background, after every change asked for before. */
  removeLater(ids: string[]): Promise<Failure[]>;
  /** The caller no longer holds these sessions in memory (backends that protect held ones). */
  release(ids: string[]): void;
  /** Deletes expired stored sessions in the background; resolves with what it did. */
  sweep(now: number, policy: ExpiryPolicy, removeCorrupt: boolean): Promise<SweepSummary>;
  /** What the backend tells of itself in the store's `stats()`. */
  stats(): Record<string, unknown>;
  /** Lets go of the backend's resources for good. */
  close(): void;
}

/** One stored session as the command-line tool reports it. */
export interface SessionInfo {
  id: string;
  /** Bytes. */
  size: number;
  createdAt?: number | null;
  lastUsed?: number | null;
  /** Why it is not a readable session (`ERR_CORRUPT_SESSION`, `EACCES`…), if it is not. */
  problem?: string | null;
  message?: string | null;
}

/** What `prune` deletes: the limits from `now`, and whether corrupt copies go too. */
export interface PruneOptions {
  now: number;
  staleTimeout?: number | null;
  maxToLive?: number | null;
  removeCorrupt: boolean;
  dryRun: boolean;
}

/** What `prune` did. */
export interface PruneTotals {
  scanned: number;
  expired: number;
  removed: number;
  keptBusy: number;
  corrupt: number;
  removedCorrupt: number;
  failed: Failure[];
  temporariesRemoved: number;
}

/**
 * Where the command-line tool (`rammerhead-sessions`) finds sessions: a directory, or a key
 * prefix on Redis. Both offer the same verbs, so every command works on either, and `copy`
 * between them.
 */
export interface SessionPlace {
  /** The place, in messages. */
  readonly name: string;
  /** What a session that cannot be read is, in messages (`files`, `values`). */
  readonly unreadableKind: string;
  /** Gets ready for writes (Redis: reachable, and its expiry policy learnt). */
  prepare(): Promise<void>;
  ids(): string[];
  /** What each id holds, a batch at a time; `onBatch(done)` after each batch. */
  inspect(ids: string[], onBatch?: (done: number) => void): SessionInfo[];
  /** The session's JSON; `ENOENT` when there is none. */
  read(id: string): string;
  /** Stores JSON from outside, checked to be a session. */
  write(id: string, json: string): void;
  /** Deletes the expired (and, if asked, corrupt) sessions among `ids`, re-checking each. */
  prune(ids: string[], options: PruneOptions, onBatch: (done: number) => void): PruneTotals;
  close(): void;
}
