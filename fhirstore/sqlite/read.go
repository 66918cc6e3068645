package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// scanner is the Scan method shared by *sql.Row and *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanVersion reads (id, version, time, body) into a Resource of type typ.
func scanVersion(s scanner, typ string) (*fhirstore.Resource, error) {
	var (
		id      string
		version int64
		ms      int64
		body    []byte
	)
	if err := s.Scan(&id, &version, &ms, &body); err != nil {
		return nil, err
	}
	return &fhirstore.Resource{
		Type: typ, ID: id, VersionID: strconv.FormatInt(version, 10),
		LastUpdated: time.UnixMilli(ms).UTC(), Deleted: body == nil, Body: body,
	}, nil
}

// Read returns the current version of typ/id.
func (db *DB) Read(ctx context.Context, typ, id string) (*fhirstore.Resource, error) {
	if !fhirstore.ValidID(id) {
		return nil, fmt.Errorf("%w: %s/%s", fhirstore.ErrNotFound, typ, id)
	}
	row := db.rstmts.read.QueryRowContext(ctx, typ, id)
	res, err := scanVersion(row, typ)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s/%s", fhirstore.ErrNotFound, typ, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", typ, id, err)
	}
	if res.Deleted {
		return res, fmt.Errorf("%w: %s/%s", fhirstore.ErrGone, typ, id)
	}
	return res, nil
}

// VRead returns version versionID of typ/id.
func (db *DB) VRead(ctx context.Context, typ, id, versionID string) (*fhirstore.Resource, error) {
	v, err := strconv.ParseInt(versionID, 10, 64)
	if err != nil || v < 1 || !fhirstore.ValidID(id) {
		return nil, fmt.Errorf("%w: %s/%s/_history/%s", fhirstore.ErrNotFound, typ, id, versionID)
	}
	if res, ok := db.vers.get(typ, id, versionID); ok {
		return res, nil
	}
	row := db.rstmts.vread.QueryRowContext(ctx, typ, id, v)
	res, err := scanVersion(row, typ)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s/%s/_history/%s", fhirstore.ErrNotFound, typ, id, versionID)
	}
	if err != nil {
		return nil, fmt.Errorf("vread %s/%s/_history/%s: %w", typ, id, versionID, err)
	}
	return res, nil
}

// History returns versions newest first. Instance history of a resource
// that never existed gives fhirstore.ErrNotFound.
func (db *DB) History(ctx context.Context, req fhirstore.HistoryRequest) (*fhirstore.Page, error) {
	var (
		where []string
		args  []any
		from  string
		order string
		// interaction is the column of the change that made the version
		interaction = "c.interaction"
	)
	switch {
	case req.ID != "":
		if req.Type == "" {
			return nil, fmt.Errorf("%w: instance history needs a type", fhirstore.ErrInvalid)
		}
		from, order = "versions c", "c.version DESC"
		interaction = "(SELECT interaction FROM changes WHERE seq = c.seq)"
		where = append(where, "c.type = ?", "c.id = ?")
		args = append(args, req.Type, req.ID)
	case req.Type != "":
		from, order = "changes c", "c.seq DESC"
		where = append(where, "c.type = ?")
		args = append(args, req.Type)
	default:
		from, order = "changes c", "c.seq DESC"
	}
	if !req.Since.IsZero() {
		where = append(where, "c.time >= ?")
		args = append(args, req.Since.UnixMilli())
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := db.reader.QueryRowContext(ctx, "SELECT count(*) FROM "+from+cond, args...).Scan(&total); err != nil {
		return nil, fmt.Errorf("count history: %w", err)
	}
	if total == 0 && req.ID != "" {
		if _, err := db.Read(ctx, req.Type, req.ID); errors.Is(err, fhirstore.ErrNotFound) {
			return nil, err
		}
	}
	page := &fhirstore.Page{Total: total}
	lo, hi := fhirstore.PageBounds(total, req.Count, req.Offset)
	if hi <= lo {
		return page, nil
	}
	query := "SELECT c.type, c.id, c.version, c.time, v.body, " + interaction + " FROM " + from +
		" JOIN versions v ON v.seq = c.seq" + cond + " ORDER BY " + order + " LIMIT ? OFFSET ?"
	rows, err := db.reader.QueryContext(ctx, query, append(args, hi-lo, lo)...)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, interaction string
		res, err := scanVersion(historyScanner{rows, &typ, &interaction}, "")
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		res.Type, res.Interaction = typ, fhirstore.Interaction(interaction)
		page.Resources = append(page.Resources, res)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return page, nil
}

// historyScanner scans a history row: the type column, the version
// columns scanVersion asks for, then the change's interaction.
type historyScanner struct {
	rows             *sql.Rows
	typ, interaction *string
}

func (s historyScanner) Scan(dest ...any) error {
	return s.rows.Scan(append(append([]any{s.typ}, dest...), s.interaction)...)
}

// Search narrows the live resources of q.Type with the search_keys index
// (q.Narrow), then lets fhirstore.SearchPage decide, sort and page.
func (db *DB) Search(ctx context.Context, q *search.Query) (*fhirstore.Page, error) {
	if q == nil || !fhirstore.ValidType(q.Type) {
		return nil, fmt.Errorf("%w: search needs a resource type", fhirstore.ErrInvalid)
	}
	var sb strings.Builder
	sb.WriteString(`SELECT v.id, v.version, v.time, v.body FROM resources r JOIN versions v ON v.seq = r.seq
		WHERE r.type = ? AND r.deleted = 0`)
	args := []any{q.Type}
	for _, group := range q.Narrow() {
		if len(group) == 0 {
			return &fhirstore.Page{}, nil // a group no resource can satisfy
		}
		if ids, ok := idGroup(group); ok {
			sb.WriteString(" AND r.id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")")
			args = append(args, ids...)
			continue
		}
		values := probeValues(group)
		sb.WriteString(" AND r.id IN (SELECT id FROM search_keys WHERE type = ? AND value IN (" +
			strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ") + "))")
		args = append(args, q.Type)
		args = append(args, values...)
	}
	rows, err := db.reader.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", q.Type, err)
	}
	defer rows.Close()
	var candidates []*fhirstore.Resource
	for rows.Next() {
		res, err := scanVersion(rows, q.Type)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", q.Type, err)
		}
		candidates = append(candidates, res)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search %s: %w", q.Type, err)
	}
	return fhirstore.SearchPage(q, candidates)
}

// probeValues lists the values an OR-group of keys probes search_keys
// for, once each, under every parameter: a resource's row of a value
// stands for it under all its parameters (keys.go), and the query's match
// (fhirstore.SearchPage) drops what the index let through, since it only
// narrows. A key "s|c" is probed by its own value and by c, the value of
// the folded row (c, s) that stands for it. The search limits allow 100
// groups of 100 values, and SQLite at most 32,766 variables.
func probeValues(group []search.Key) []any {
	out := make([]any, 0, 2*len(group))
	seen := make(map[string]bool, 2*len(group))
	add := func(v string) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, k := range group {
		add(k.Value)
		if _, code, ok := strings.Cut(k.Value, "|"); ok {
			add(code)
		}
	}
	return out
}

// idGroup reports whether every key of group is an _id key and returns the
// ids they name ("x" and "|x" both name id x). Such groups are answered by
// the resources primary key: _id keys are not stored in search_keys.
func idGroup(group []search.Key) ([]any, bool) {
	ids := make([]any, 0, len(group))
	for _, k := range group {
		if k.Param != "_id" {
			return nil, false
		}
		ids = append(ids, strings.TrimPrefix(k.Value, "|"))
	}
	return ids, true
}
