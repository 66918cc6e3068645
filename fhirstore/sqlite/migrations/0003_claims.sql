-- Conditional-write claims (fhirstore.Store.Claim): which resource answers
-- a normalised condition such as "Patient?identifier=a%7Cb". The primary
-- key makes concurrent conditional creates of one condition have one
-- winner. time is unix milliseconds.
CREATE TABLE claims (
	key  TEXT    PRIMARY KEY,
	id   TEXT    NOT NULL,
	time INTEGER NOT NULL
) WITHOUT ROWID;
