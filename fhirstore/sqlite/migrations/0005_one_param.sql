-- One row of a value per resource (keys.go, "Folded parameters"): the
-- rows of one resource and (value, sys) under several parameters (subject
-- and patient, code and combo-code) become one, the row of the first
-- parameter. A search probes by value under every parameter and its match
-- drops what does not belong.
DELETE FROM search_keys
WHERE EXISTS (
	SELECT 1 FROM search_keys f
	WHERE f.type = search_keys.type AND f.value = search_keys.value AND f.id = search_keys.id
		AND f.sys = search_keys.sys AND f.param < search_keys.param);
