-- Folded token keys (keys.go): a row (value, sys) with sys not '|' stands
-- for two keys, value and sys|value; a row whose sys is '|' stands for its
-- value alone. The rows of the old table are folded the way foldKeys
-- folds a resource's keys: a key "s|v" whose code part "v" is a key of
-- the same resource and parameter becomes (v, s); every key not stood for
-- so stays alone.
--
-- The key orders rows by value, then resource: a resource's rows of one
-- value under several parameters (subject and patient, code and
-- combo-code) are neighbours, and share the leaf page a write dirties.
-- A search probes (type, value) and filters the parameter.
CREATE TABLE search_keys_folded (
	type  TEXT NOT NULL,
	param TEXT NOT NULL,
	value TEXT NOT NULL,
	sys   TEXT NOT NULL,
	id    TEXT NOT NULL,
	PRIMARY KEY (type, value, id, param, sys)
) WITHOUT ROWID;

INSERT INTO search_keys_folded (type, param, value, sys, id)
SELECT k.type, k.param, substr(k.value, instr(k.value, '|') + 1), substr(k.value, 1, instr(k.value, '|') - 1), k.id
FROM search_keys k
WHERE instr(k.value, '|') > 0 AND EXISTS (
	SELECT 1 FROM search_keys c
	WHERE c.type = k.type AND c.param = k.param AND c.value = substr(k.value, instr(k.value, '|') + 1) AND c.id = k.id);

INSERT INTO search_keys_folded (type, param, value, sys, id)
SELECT k.type, k.param, k.value, '|', k.id
FROM search_keys k
WHERE NOT (instr(k.value, '|') > 0 AND EXISTS (
		SELECT 1 FROM search_keys c
		WHERE c.type = k.type AND c.param = k.param AND c.value = substr(k.value, instr(k.value, '|') + 1) AND c.id = k.id))
	AND NOT EXISTS (
		SELECT 1 FROM search_keys_folded f
		WHERE f.type = k.type AND f.param = k.param AND f.value = k.value AND f.id = k.id);

DROP TABLE search_keys;
ALTER TABLE search_keys_folded RENAME TO search_keys;
