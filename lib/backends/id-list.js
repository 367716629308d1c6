// @ts-check
'use strict';

/** Ids as the native side lists them: one string, separated by '/', which no id contains. */
function splitIdList(list) {
  return list === '' ? [] : list.split('/');
}

module.exports = { splitIdList };
