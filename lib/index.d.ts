/**
 * Drop-in session stores for rammerhead: `require('rammerhead-session-store')` in place of
 * rammerhead's own `RammerheadSessionFileCache` / `RammerheadSessionMemoryStore`.
 */

/** What a store needs of a session: rammerhead's `RammerheadSession` or a class like it. */
export interface StoredSession {
  id: string
  /** Epoch milliseconds. */
  createdAt: number
  /** Epoch milliseconds of the last use. */
  lastUsed: number
  /** Sets `lastUsed` to `Date.now()`. */
  updateLastUsed(): void
  /** `{"data": {...}, "serializedCookieJar": "<string>"}` as JSON. */
  serializeSession(): string
}

/** The class a store creates sessions with, like rammerhead's `RammerheadSession`. */
export interface SessionClass<S extends StoredSession = StoredSession> {
  new (options: { id: string }): S
  /** Revives a session; throws on bad JSON or when `data` or `serializedCookieJar` is missing. */
  DeserializeSession(id: string, serializedSession: string): S
}

/** Any object with these methods, such as rammerhead's `RammerheadLogging`. */
export interface Logger {
  debug(message: string): void
  info(message: string): void
  warn(message: string): void
  error(message: string): void
}

/** The part of hammerhead's / rammerhead's proxy a store attaches to. */
export interface ProxyLike<S = StoredSession> {
  openSessions: { entries(): Iterable<[string, S]> } | RammerheadSessionAbstractStore<any>
  closeSession(session: S): void
}

/** The interface every store implements; hammerhead uses it as `proxy.openSessions`. */
export declare abstract class RammerheadSessionAbstractStore<S extends StoredSession = StoredSession> {
  /** Throws `Error('abstract classes cannot be instantiated')` unless called from a subclass. */
  constructor()
  /**
   * Sets `proxy.openSessions = this`. With `removeExistingSessions` (default true) it first
   * closes every session the proxy held. Throws `TypeError('already attached to proxy')` when
   * this store is already the proxy's. The FileCache and the Redis store also add, on a proxy
   * with rammerhead's request pipeline, a first step that gets each request's session ready
   * before hammerhead reads it (README, "What it guarantees").
   */
  attachToProxy(proxy: ProxyLike<S>, removeExistingSessions?: boolean): void
  /** Ids of every session the store holds. */
  keys(): string[]
  /** Whether a session with this id exists. Throws `TypeError` for a non-string id. */
  has(id: string): boolean
  /**
   * The session, or `undefined`. With `updateActiveTimestamp` (default true) it calls
   * `session.updateLastUsed()`: always the first time after the session enters memory, then at
   * most once a second, so `lastUsed` is current to within about a second. Throws `TypeError`
   * for a non-string id.
   */
  get(id: string, updateActiveTimestamp?: boolean): S | undefined
  /**
   * Creates, stores and returns a new session; throws `Error` if the id exists, and `TypeError`
   * (`code: 'ERR_INVALID_SESSION_ID'`) for an id that cannot name a session file: empty, `/`,
   * `\`, NUL, `.`, `..`, over 244 bytes in UTF-8, or not well-formed UTF-16 (a lone surrogate).
   */
  add(id: string): S
  /** Removes a session; true if there was one. */
  delete(id: string): boolean
  /**
   * Stores a session exported with `serializeSession()`. Throws, storing nothing, on bad JSON,
   * on JSON a session file may not hold (`code: 'ERR_INVALID_SESSION'`: a duplicate key among
   * those a store reads, a number out of range), and for an impossible id as `add` does.
   */
  addSerializedSession(id: string, serializedSession: string): void
  /** Releases the store's resources; does nothing here. */
  close(): void
}

export interface MemoryStoreOptions<S extends StoredSession = StoredSession> {
  /** Default: a silent logger. */
  logger?: Logger
  /** Milliseconds without use after which a session is deleted. Default 30 min; null or 0 disables. */
  staleTimeout?: number | null
  /** Milliseconds after creation after which a session is deleted. Default 4 h; null or 0 disables. */
  maxToLive?: number | null
  /** Milliseconds between cleanups. Default 1 min. */
  cleanupInterval?: number
  /** Default: rammerhead's `RammerheadSession`, found in an installed `rammerhead` package or the rammerhead source tree the program runs from. */
  sessionClass?: SessionClass<S>
}

/** Sessions in memory only, lost when the process exits. */
export declare class RammerheadSessionMemoryStore<
  S extends StoredSession = StoredSession,
> extends RammerheadSessionAbstractStore<S> {
  /** Throws `TypeError` naming an option of the wrong type or out of range. */
  constructor(options?: MemoryStoreOptions<S>)
  readonly logger: Logger
  readonly staleTimeout: number | null
  readonly maxToLive: number | null
  readonly cleanupInterval: number
  /** Stops the cleanup timer; sessions stay available. */
  close(): void
}

/** How a stored value is written (see docs/at-rest.md). */
export type Encoding = 'plain' | 'zstd' | 'aes-256-gcm' | 'zstd+aes-256-gcm'

export interface StaleCleanupOptions {
  /** Milliseconds without use after which a session file is deleted; null or 0 (or left out) disables. */
  staleTimeout?: number | null
  /** Milliseconds after creation after which a session file is deleted; null or 0 (or left out) disables. */
  maxToLive?: number | null
  /** Milliseconds between cleanups. Default 1 h. */
  staleCheckInterval?: number
}

export interface FileCacheOptions<S extends StoredSession = StoredSession> {
  /** An existing, writable directory. Default: the `sessions` folder of rammerhead, else `./sessions`. */
  saveDirectory?: string
  /** Default: a silent logger. */
  logger?: Logger
  /** Milliseconds without use after which a session leaves memory (written first). Default 20 min. */
  cacheTimeout?: number
  /** Milliseconds between cache checks. Default 10 min. */
  cacheCheckInterval?: number
  /**
   * Drop never-used sessions (`lastUsed === createdAt`, and never returned by a `get` that
   * updates `lastUsed`) from memory without writing them. Default true.
   */
  deleteUnused?: boolean
  /**
   * Delete session files that cannot be read as sessions. Default true; always false with
   * `encryptionKeys` (a damaged encrypted value cannot be told from other damage).
   */
  deleteCorruptedSessions?: boolean
  /**
   * `'zstd'` compresses what the store writes; `'none'` or null does not. Default: the
   * `RAMMERHEAD_SESSION_COMPRESSION` environment variable (`zstd` or `none`), else `'none'`.
   * Values of every codec are read whatever this says.
   */
  compression?: 'zstd' | 'none' | null
  /**
   * AES-256 keys, base64 of 32 bytes each (`openssl rand -base64 32`): the first encrypts what
   * the store writes, every one decrypts (for rotation). A value none of them decrypts is not
   * served and never deleted. Default: the `RAMMERHEAD_SESSION_KEYS` environment variable (keys
   * separated by commas), else none: values are written unencrypted.
   */
  encryptionKeys?: Array<string | Buffer> | null
  /** Default `{ staleTimeout: 1 day, maxToLive: 4 days, staleCheckInterval: 1 h }`; null disables cleanup. */
  staleCleanupOptions?: StaleCleanupOptions | null
  /** fsync every file and the directory before a write counts as done. Default false. */
  durable?: boolean
  /**
   * Session files larger than this many bytes are not read (`get` gives `undefined` and logs
   * `ERR_SESSION_TOO_LARGE`; the file is kept). Default 64 MiB.
   */
  maxSessionBytes?: number
  /** Default: rammerhead's `RammerheadSession`, found as for the memory store. */
  sessionClass?: SessionClass<S>
}

/** Summary of one stale cleanup pass over the files. */
export interface SweepSummary {
  scanned: number
  expired: number
  removed: number
  /** Expired on disk but in use or rewritten while the cleanup ran, so kept. */
  keptBusy: number
  corrupt: Array<{ id: string; code: string; message: string }>
  removedCorrupt: number
  unreadable: Array<{ id: string; code: string; message: string }>
  failed: Array<{ id: string; code: string; message: string }>
  temporariesRemoved: number
}

/**
 * Sessions in memory while in use, in `<saveDirectory>/<id>.rhfsession` files otherwise.
 * Files are replaced atomically with mode 0600; writes and cleanup run off the JavaScript thread.
 */
export declare class RammerheadSessionFileCache<
  S extends StoredSession = StoredSession,
> extends RammerheadSessionAbstractStore<S> {
  /**
   * Throws `TypeError` naming an option of the wrong type or out of range, and an `Error` naming
   * the path (with `code` such as `ENOENT`, `ENOTDIR`, `EACCES`) when `saveDirectory` is missing,
   * not a directory or not writable.
   */
  constructor(options?: FileCacheOptions<S>)
  readonly saveDirectory: string
  readonly logger: Logger
  readonly cacheTimeout: number
  readonly cacheCheckInterval: number
  readonly deleteUnused: boolean
  readonly deleteCorruptedSessions: boolean
  readonly durable: boolean
  readonly maxSessionBytes: number
  /** How new values are written: `plain`, `zstd`, `aes-256-gcm` or `zstd+aes-256-gcm`. */
  readonly encoding: Encoding
  readonly staleCleanupOptions: Required<StaleCleanupOptions> | null
  /** The sessions held in memory, by id: a copy, made anew at each read (for inspection). */
  readonly cachedSessions: Map<string, S>
  /** Ids of the session files and of the sessions in memory, each once. */
  keys(): string[]
  /**
   * In memory, or its file exists and revives as `get` would (so sessions written by other
   * processes are seen at once, and a file `get` cannot serve is not a session). A session read
   * for `has` is not kept in memory.
   */
  has(id: string): boolean
  /**
   * A session in memory is returned at once; otherwise its file is read and revived. An id that
   * cannot name a file, a missing file or an unreadable one gives `undefined` (and a
   * `logger.warn` for unreadable files; those that are not sessions are deleted with
   * `deleteCorruptedSessions`). Only regular files are read: never through a symbolic link,
   * never a FIFO or device, never more than `maxSessionBytes`.
   */
  get(id: string, updateActiveTimestamp?: boolean): S | undefined
  /**
   * Creates a session and keeps it in memory; its file is written in the background, starting at
   * once (`whenWritten()` waits for it; other processes see it from then on). A write that fails
   * is logged and retried at the next cache check; `close()` writes it too. Throws `TypeError`
   * for an id that cannot name a file, as the abstract store describes.
   */
  add(id: string): S
  /**
   * Deletes the file and the copy in memory; true if there was either, and then no `get` or
   * `has` finds the session. False, with a `logger.error` naming the code, when the file cannot
   * be deleted (permissions, an immutable file): the session then stays as it was, in memory
   * and on disk. Never throws for IO.
   */
  delete(id: string): boolean
  /**
   * Writes `serializedSession` as the file before returning, so other processes see it at once
   * (rammerhead's `/newsession` relies on this); it replaces any copy in memory. Invalid input
   * throws as the abstract store describes. If the file cannot be written (disk full, a
   * read-only directory), it does not throw: the session is kept in memory and served by this
   * process, the failure is logged with its code, and the file is written at the next cache
   * check or at `close()`; other processes see the session only then.
   */
  addSerializedSession(id: string, serializedSession: string): void
  /** Resolves once every file write started so far, by `add` and cache checks, has finished. */
  whenWritten(): Promise<void>
  /**
   * Moves sessions idle for longer than `cacheTimeout` out of memory, writing them first
   * (runs every `cacheCheckInterval`). Resolves once the writes are done.
   */
  checkCache(): Promise<void>
  /** Runs stale cleanup now (it also runs every `staleCheckInterval`). */
  removeStaleSessions(): Promise<SweepSummary | undefined>
  /**
   * Stops the timers and writes every session in memory before returning (with `deleteUnused`,
   * sessions never used are dropped unwritten, as the cache check drops them). If some cannot be
   * written it throws one `Error` with `code: 'ERR_SESSIONS_NOT_SAVED'` and a `failures` list,
   * after trying all the others; those sessions stay in memory.
   */
  close(): void
  /** What the store holds and how its writes fare. */
  stats(): StoreStats
}

/** What a store with a cache layer holds and how its writes fare. */
export interface StoreStats {
  /** Sessions held in memory. */
  held: number
  /** Held sessions changed or new and not stored yet. */
  unwritten: number
  /** Sessions with a write handed to the background and not finished. */
  writesPending: number
  /** `addSerializedSession` calls that could not store at once; those sessions were kept in memory. */
  keptInMemory: number
}

export interface RedisStoreStats extends StoreStats {
  /** Whether Redis is reachable, as far as the last command and reconnection know. */
  available: boolean
  /** Connections made so far: it grows at each reconnection. */
  connects: number
  /**
   * Whether this store hears other hosts' changes: its subscription was made, as last heard
   * (false until then, and after it could not be made again).
   */
  subscribed: boolean
  /** Held copies that took, in place, a newer version another host stored. */
  refreshed: number
  /** Changes made here merged with a newer version another host stored. */
  merged: number
  /** Sessions stored over another host's version after ten merges in a row were refused. */
  lastWriterWins: number
  /** Held sessions dropped because another host deleted them. */
  droppedDeleted: number
}

export interface RedisStoreOptions<S extends StoredSession = StoredSession>
  extends Omit<FileCacheOptions<S>, 'durable' | 'saveDirectory'> {
  /**
   * One server: `redis://[user:password@]host[:port][/db]`. A Redis Cluster:
   * `redis+cluster://[user:password@]host:port[,host:port...]` (seed nodes). The master a group
   * of Sentinels names: `redis+sentinel://[user:password@]host:port[,host:port...]/<master>[/<db>]`.
   * `rediss`, `rediss+cluster`, `rediss+sentinel` for TLS. Default: the `REDIS_URL` environment
   * variable, else `redis://127.0.0.1:6379`.
   */
  redisUrl?: string
  /**
   * Prefix of every key the store uses; stores with the same prefix share sessions. Keep braces
   * out of it (a `{…}` would put every session in one slot of a cluster). Default `rammerhead:`.
   */
  keyPrefix?: string
  /**
   * PEM certificates (text, or a file's bytes) of the authorities that may sign a `rediss://`
   * server's certificate, in place of the public roots: for servers with a private authority.
   * With a `redis://` URL it throws a TypeError (`ERR_INVALID_REDIS_URL`).
   */
  tlsCa?: string | Buffer
  /**
   * Accept any certificate from a `rediss://` server: for services with a self-signed
   * certificate and no authority to give. Whoever can intercept the connection can then read and
   * change every session; the store warns at every start. Default: true when the environment
   * has `RAMMERHEAD_SESSION_TLS_INSECURE=1`, else false. With a `redis://` URL or beside `tlsCa`
   * it throws a TypeError (`ERR_INVALID_REDIS_URL`).
   */
  tlsInsecure?: boolean
  /** Milliseconds a command may take before Redis counts as unreachable. Default 500. */
  commandTimeout?: number
  /** Milliseconds a connection attempt may take. Default 2000. */
  connectTimeout?: number
  /** Milliseconds between rounds that store changed sessions and refresh expiry. Default 1000. */
  writeInterval?: number
  /**
   * On a proxy with rammerhead's request pipeline, before each request compare a held
   * session's version with Redis's and take in a newer copy, and before its response leaves
   * store the cookies it set (and any change one of rammerhead's routes made). Default true,
   * which a round-robin balancer needs; false for a sticky balancer.
   */
  syncEachRequest?: boolean
  /**
   * Milliseconds a request waits for Redis at most, before it (the version check) and before
   * its response leaves (the storing of its changes); past it, the request goes on. Default 25.
   */
  syncTimeout?: number
  /** Accepted, as rammerhead passes it, and ignored. */
  saveDirectory?: string
  /**
   * Becomes key expiry in Redis (relative to the Redis server's clock), written into Redis so
   * that stores given null (rammerhead's cluster workers) store sessions that expire too.
   */
  staleCleanupOptions?: StaleCleanupOptions | null
}

/**
 * Sessions in memory while in use and in Redis, shared by every process and host using the same
 * Redis and `keyPrefix`. Changed sessions are stored within about `writeInterval`; unchanged
 * ones leave memory without a write. While Redis is unreachable, sessions in memory keep
 * working, others are `undefined`, and nothing throws into request handling.
 */
export declare class RammerheadSessionRedisStore<
  S extends StoredSession = StoredSession,
> extends RammerheadSessionAbstractStore<S> {
  /**
   * Throws `TypeError` naming an option of the wrong type or out of range, or
   * (`ERR_INVALID_REDIS_URL`) a URL that cannot be parsed. Waits at most `connectTimeout` for a
   * first connection; a Redis not reachable yet is connected to in the background.
   */
  constructor(options?: RedisStoreOptions<S>)
  /** The URL, its password masked. */
  readonly redisUrl: string
  /** Whether TLS certificate checks are off. */
  readonly tlsInsecure: boolean
  readonly keyPrefix: string
  readonly logger: Logger
  readonly cacheTimeout: number
  readonly cacheCheckInterval: number
  readonly commandTimeout: number
  readonly connectTimeout: number
  readonly writeInterval: number
  readonly syncEachRequest: boolean
  readonly syncTimeout: number
  readonly deleteUnused: boolean
  readonly deleteCorruptedSessions: boolean
  readonly maxSessionBytes: number
  /** How new values are written: `plain`, `zstd`, `aes-256-gcm` or `zstd+aes-256-gcm`. */
  readonly encoding: Encoding
  readonly staleCleanupOptions: Required<StaleCleanupOptions> | null
  readonly cachedSessions: Map<string, S>
  /** Ids in Redis (from the store's index, never a scan) and in memory, each once. Throws `ERR_REDIS_UNAVAILABLE` while Redis is unreachable. */
  keys(): string[]
  /** In memory, or stored and revivable (one round trip); false while Redis is unreachable. */
  has(id: string): boolean
  /**
   * A session in memory is returned at once; otherwise one round trip loads and revives it.
   * `undefined` when there is none, and while Redis is unreachable: after at most
   * `commandTimeout` the first time, at once after that until it is back.
   */
  get(id: string, updateActiveTimestamp?: boolean): S | undefined
  /** Creates a session and keeps it in memory; it is stored in the background at once (`whenWritten()`). */
  add(id: string): S
  /**
   * Deletes the session in Redis and in memory; false, logged, when Redis cannot be reached.
   * Inside a route of a proxy with rammerhead's pipeline, the session leaves memory at once,
   * Redis deletes it in the background, and the route's response waits for that; it returns
   * whether the session was held.
   */
  delete(id: string): boolean
  /**
   * Stores the session before returning, so every process sees it at once. While Redis is
   * unreachable it does not throw: the session is kept in memory, logged, counted in
   * `stats().keptInMemory`, and stored as soon as Redis is back; others see it only then.
   * Inside a route of a proxy with rammerhead's pipeline (`/newsession`), it is held at once and
   * stored in the background, and the route's response waits for that instead; bad input
   * still throws at once.
   */
  addSerializedSession(id: string, serializedSession: string): void
  /** Resolves once every background write started so far has finished. */
  whenWritten(): Promise<void>
  /** Stores changed sessions and refreshes expiry now (it also runs every `writeInterval`). */
  writeChanges(): Promise<void>
  /** Moves sessions idle for longer than `cacheTimeout` out of memory, stored first if changed. */
  checkCache(): Promise<void>
  /** Drops expired ids from the index (Redis deletes the sessions themselves). */
  removeStaleSessions(): Promise<SweepSummary | undefined>
  /**
   * Stops the timers and stores every changed session before returning, waiting at most a few
   * `commandTimeout`s. Throws one `Error` with `code: 'ERR_SESSIONS_NOT_SAVED'` listing those
   * it could not store; they stay in memory.
   */
  close(): void
  stats(): RedisStoreStats
}
