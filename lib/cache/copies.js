// @ts-check
'use strict';

/**
 * What a backend's copies tell the cache when a write settles (see `Copies.settled`), besides
 * `{ retry: json }`.
 */
const Verdict = Object.freeze({
  /** Stored: the session is written. */
  STORED: 'stored',
  /** Not stored, and the session stays unwritten, to be stored later. */
  KEPT: 'kept',
  /** Deleted by another host since the copy was loaded: the session leaves memory. */
  DELETED: 'deleted',
});

/** What a write is based on for backends that keep no versions: whatever is stored. */
const ANY = -1;

/**
 * @typedef {object} Copies What the cache asks of a backend's copies, the one thing besides the
 * backend that differs between stores: how the copy a held session is based on relates to the
 * stored one. A backend that keeps versions (Redis) keeps what it knows of a held session's
 * copy in `held.copy`, and nowhere else.
 * @property {boolean} holdsImports whether `addSerializedSession` keeps the imported session in
 *   memory (a store shared by hosts does: the host that made it is the one its browser comes
 *   back to)
 * @property {(held: object, copy: { json: string, version: number }) => void} tracked the held
 *   session is now the stored copy `copy`, as loaded or imported
 * @property {(held: object, json: string, options: { known?: object, leaving: boolean,
 *   replacing: boolean }) => { base: number | null }} writing a write of `json` begins: what it
 *   is based on (null: new here, -1: whatever is stored, else the version), and whatever
 *   `settled` is to be told of it. `known`: what the copies made of this JSON already, for
 *   them alone to read; `leaving`: the session leaves memory once stored; `replacing`: an
 *   import, which replaces whatever is stored.
 * @property {(held: object, write: object, failure?: { code: string }, version?: number) =>
 *   string | { retry: string }} settled the write `writing` began is done: stored (no
 *   `failure`, as `version`), or refused or failed; a Verdict, or `{ retry: json }` for a
 *   write to try again with these contents
 * @property {(held: object) => boolean} isStored whether the stored copy holds everything the
 *   held one does, so that it may leave memory unwritten
 * @property {() => object} stats counters for the store's `stats()`
 */

/** @type {Copies} The copies of a backend that keeps no versions (files): nothing to track. */
const unversionedCopies = Object.freeze({
  holdsImports: false,
  tracked() {},
  writing() {
    return { base: ANY };
  },
  settled(held, write, failure) {
    return failure === undefined ? Verdict.STORED : Verdict.KEPT;
  },
  isStored() {
    return false;
  },
  stats() {
    return {};
  },
});

/**
 * What goes to the backend for a write the cache began (`write.copy` is what `Copies.writing`
 * returned): the session's id, its JSON, and the base the copies named.
 *
 * @returns {import('../backends/contract').WriteItem}
 */
function itemOf(write, json) {
  return { id: write.held.id, json, base: write.copy.base };
}

module.exports = { Verdict, ANY, unversionedCopies, itemOf };
