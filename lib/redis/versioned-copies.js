// @ts-check
'use strict';

const { MergeBase, changeFingerprint, mergeSessions } = require('../../index.js');
const { ANY, Verdict } = require('../cache/copies');
const { serializedOrLogged } = require('../cache/held-sessions');

/**
 * Merges in a row after which a session is stored whatever Redis holds (last writer wins): each
 * takes one round trip, and hosts writing one session at once settle within a few.
 */
const MAX_MERGES = 10;
/**
 * Copies of a held session's writes kept while their outcome is not known (under way, or
 * failed without a reply): a newer stored copy equal to one of them is this host's own.
 */
const MAX_SENT = 4;

/**
 * What the Redis store knows of the copy a held session is based on: all of a held session's
 * Redis state, in `held.copy`.
 */
class VersionedCopy {
  constructor() {
    /** The stored version this copy is based on; undefined: created here, never stored. */
    this.version = undefined;
    /** The merge base of that stored copy (undefined: merged as new). */
    this.base = undefined;
    /** The change fingerprint of that stored copy. */
    this.fingerprint = undefined;
    /**
     * What the writes of this session whose outcome it has not learnt store, newest last (null:
     * none): a copy (see `storedCopyOf`) or, for a write that failed without a reply, its JSON,
     * read the first time it is needed.
     */
    this.sent = null;
    /** Writes refused for a newer stored copy in a row. */
    this.conflicts = 0;
    /** Whether its cookie changes are watched. */
    this.watched = false;
    /** Cookie changes made through hammerhead since it was first watched. */
    this.cookieChanges = 0;
  }
}

/**
 * The copies of the Redis store (see `Copies` in `cache/copies.js`): every stored copy has a
 * version, and a held session remembers the version it was loaded (or last stored) as, with a
 * `MergeBase` of that copy. A write is based on that version; one refused because another host
 * stored a newer version takes that copy in, merged with what changed here since the base, and
 * is written again. The copy also decides that an unchanged session leaves memory unwritten,
 * and has cookie changes made through hammerhead written within milliseconds.
 */
class VersionedCopies {
  /**
   * @param {{ name: string, logger: object,
   *   sessionClass: { DeserializeSession(id: string, json: string): any },
   *   onCookieChange: (held: object) => void }} settings
   */
  constructor({ name, logger, sessionClass, onCookieChange }) {
    this.name = name;
    this.logger = logger;
    this.sessionClass = sessionClass;
    this.onCookieChange = onCookieChange;
    /** An import is held at once: the host that made it is the one its browser comes back to. */
    this.holdsImports = true;
    /**
     * How held copies are kept in step with other hosts: `subscribed` (hearing other hosts'
     * changes, as last heard), `refreshed` (taken as stored elsewhere), `merged` (changes made
     * here merged with a newer copy), `lastWriterWins` (stored whatever Redis held after
     * repeated conflicts), `droppedDeleted` (deleted by another host).
     */
    this.counts = {
      subscribed: false,
      refreshed: 0,
      merged: 0,
      lastWriterWins: 0,
      droppedDeleted: 0,
    };
  }

  tracked(held, { json, version }) {
    this._stored(held, copyOf(held), storedCopyOf(json), version);
  }

  /**
   * What a write is based on: the version its copy was loaded or last stored as; null for a
   * session created here; whatever Redis holds (ANY) after merges kept failing. A write of a
   * session that stays records the merge base its JSON becomes once stored, made now: keeping
   * the text until the write settles would make a large session outlive the young generation.
   * One that leaves keeps its text, read only if the write fails. `replacing`: an import,
   * stored whatever Redis holds.
   */
  writing(held, json, { known, leaving, replacing }) {
    const copy = copyOf(held);
    let base = copy.version === undefined ? null : copy.version;
    if (copy.conflicts >= MAX_MERGES || replacing) base = ANY;
    if (leaving) return { base, json };
    if (!copy.watched) this._watchCookies(held, copy);
    const sent = known !== undefined && 'base' in known ? known : storedCopyOf(json, known);
    keepSent(copy, sent);
    return { base, sent };
  }

  settled(held, write, failure, version) {
    const copy = copyOf(held);
    if (failure === undefined) {
      // A session that leaves memory once stored needs nothing tracked.
      if (write.sent !== undefined) this._stored(held, copy, write.sent, version);
      return Verdict.STORED;
    }
    if (failure.code === 'ERR_SESSION_DELETED') {
      this.counts.droppedDeleted++;
      return Verdict.DELETED;
    }
    if (failure.code === 'ERR_SESSION_CONFLICT') {
      // Merged with the newer copy, and written again, based on it; after MAX_MERGES refusals
      // in a row, whatever Redis holds.
      copy.conflicts++;
      const adopted = this.adopt(held, failure.version, failure.json, true);
      const json =
        adopted !== undefined
          ? adopted.json
          : serializedOrLogged(held, this.logger, `${this.name}.merge`);
      return json === undefined ? Verdict.KEPT : { retry: json };
    }
    // Failed, maybe without telling whether it was stored: it may be this host's own newer
    // copy that a later fetch finds.
    if (write.json !== undefined) keepSent(copy, write.json);
    return Verdict.KEPT;
  }

  /** An unchanged session leaves memory without a write. */
  isStored(held) {
    return (
      held.copy !== null &&
      held.copy.fingerprint !== undefined &&
      this.changedCopy(held, false) === null
    );
  }

  stats() {
    return { ...this.counts };
  }

  /**
   * The held session's JSON when it changed since it was stored (or when `force`: it is
   * unwritten), with `known`, what its write is to be given (see `writing`); null when
   * unchanged; undefined when it cannot be serialized now (logged). `likely`: it has most
   * likely changed (a cookie did), so the merge base its write records is made in the same
   * parse as its fingerprint.
   */
  changedCopy(held, force, likely = false) {
    const json = serializedOrLogged(held, this.logger, `${this.name}.writeChanges`);
    if (json === undefined) return undefined;
    const known = likely ? storedCopyOf(json) : { fingerprint: changeFingerprint(json) };
    if (!force && held.copy !== null && known.fingerprint === held.copy.fingerprint) return null;
    return { json, known };
  }

  /**
   * Takes `json`, stored elsewhere as `version`, into the held copy, merged with what changed
   * here since its base (`force`: the held copy is unwritten, so it counts as changed). Returns
   * `{ json, merged }`, the JSON the copy now holds and whether changes made here are in it (the
   * session is then to be written), or undefined when `version` is not newer than the copy's or
   * the newer copy cannot be revived (logged).
   */
  adopt(held, version, json, force) {
    const copy = copyOf(held);
    if (!(version > versionOf(held))) return undefined;
    const stored = storedCopyOf(json);
    const changed = this.changedCopy(held, force);
    const local =
      changed && changed.known.fingerprint !== stored.fingerprint ? changed.json : undefined;
    let result = json;
    if (local !== undefined) {
      // A copy this host wrote itself, whose outcome it did not learn (a write under way, or
      // one without a reply): what changed here is what changed since that write; merged
      // against the older base, a cookie set by that write and deleted since would come back.
      const own = ownWrite(copy, stored.fingerprint);
      const base = (own && own.base) || copy.base;
      try {
        result = mergeSessions(base || null, local, json, Date.now());
        this.counts.merged++;
      } catch (error) {
        this.logger.error(
          `(${this.name}) cannot merge ${held.id}, keeping this copy: ${error.message}`,
        );
        result = local;
      }
    }
    try {
      this._replace(held, result);
    } catch (error) {
      this.logger.error(
        `(${this.name}) cannot revive the copy of ${held.id} stored elsewhere: ${error.message}`,
      );
      return undefined;
    }
    copy.version = version;
    copy.base = stored.base;
    copy.fingerprint = stored.fingerprint;
    if (local === undefined) this.counts.refreshed++;
    return { json: result, merged: local !== undefined };
  }

  /** The held copy is now the stored copy `stored` ({ base, fingerprint }), as `version`. */
  _stored(held, copy, stored, version) {
    if (!copy.watched) this._watchCookies(held, copy);
    // The latest write is stored: every earlier one came before it.
    copy.sent = null;
    // A copy taken in place meanwhile is newer than what this write stored.
    if (version > 0 && version <= versionOf(held)) return;
    copy.fingerprint = stored.fingerprint;
    if (copy.conflicts >= MAX_MERGES) {
      this.counts.lastWriterWins++;
      this.logger.warn(
        `(${this.name}) ${held.id} kept conflicting; stored this copy over the others`,
      );
    }
    copy.conflicts = 0;
    // 0: a copy stored before versions were kept, or a write that stored nothing (expired).
    if (version > 0 || (version === 0 && copy.version === undefined)) copy.version = version;
    copy.base = stored.base;
  }

  /**
   * Has a held session written within milliseconds of a cookie change made through hammerhead
   * (a response's `Set-Cookie`, or `document.cookie` synced from the page), rather than at the
   * next round: with a round-robin load balancer, the next request of the page may reach
   * another host. Other changes (`data`) are written at the next round.
   */
  _watchCookies(held, copy) {
    copy.watched = true;
    const { cookies } = held.session;
    if (!cookies) return;
    for (const name of ['setByServer', 'setByClient']) {
      const original = cookies[name];
      if (typeof original !== 'function') continue;
      cookies[name] = (...args) => {
        const result = original.apply(cookies, args);
        copy.cookieChanges++;
        this.onCookieChange(held);
        return result;
      };
    }
  }

  /** Gives the held session the contents of `json`, keeping the object hammerhead holds. */
  _replace(held, json) {
    const { session } = held;
    const fresh = this.sessionClass.DeserializeSession(held.id, json);
    session.data = fresh.data;
    session.cookies.setJar(JSON.parse(json).serializedCookieJar);
  }
}

/** The Redis state of a held session, made on first use. */
function copyOf(held) {
  if (held.copy === null) held.copy = new VersionedCopy();
  return held.copy;
}

/** How many cookie changes were made to a held session through hammerhead, as far as watched. */
function cookieChangesOf(held) {
  return held.copy === null ? 0 : held.copy.cookieChanges;
}

/** The version a held copy is based on; 0 for one created here and not stored yet. */
function versionOf(held) {
  return (held.copy !== null && held.copy.version) || 0;
}

/** Keeps what a write stores (see `ownWrite`) until the outcome of its writes is learnt. */
function keepSent(copy, copyOrJson) {
  if (copy.sent === null) copy.sent = [];
  if (copy.sent.push(copyOrJson) > MAX_SENT) copy.sent.shift();
}

/** The merge base of a stored copy; undefined (merged as new) for one that cannot be read. */
function mergeBaseOf(json) {
  try {
    return new MergeBase(json);
  } catch {
    return undefined;
  }
}

/**
 * What a held session records of a stored copy: its merge base (as `mergeBaseOf`) and its
 * fingerprint, the one `known` has when given; both from one parse otherwise.
 *
 * @param {string} json
 * @param {{ fingerprint: number | null }} [known]
 */
function storedCopyOf(json, known) {
  if (known !== undefined) return { base: mergeBaseOf(json), fingerprint: known.fingerprint };
  try {
    const base = MergeBase.withFingerprint(json);
    return { base, fingerprint: base.fingerprint };
  } catch {
    return { base: undefined, fingerprint: changeFingerprint(json) };
  }
}

/**
 * The copy (as `storedCopyOf`) of the latest write of this copy's session whose outcome it has
 * not learnt with this fingerprint; undefined if none.
 */
function ownWrite(copy, fingerprint) {
  if (copy.sent === null) return undefined;
  for (let i = copy.sent.length - 1; i >= 0; i--) {
    if (typeof copy.sent[i] === 'string') copy.sent[i] = storedCopyOf(copy.sent[i]);
    if (copy.sent[i].fingerprint === fingerprint) return copy.sent[i];
  }
  return undefined;
}

module.exports = { VersionedCopies, versionOf, cookieChangesOf };
