package smart

import "context"

// contextKey is the context key of the caller's *Access.
type contextKey struct{}

// NewContext returns ctx carrying a, the access of the caller on whose
// behalf the work in ctx is done (the web middleware stores the verified
// token's access, or Full when authentication is off).
func NewContext(ctx context.Context, a *Access) context.Context {
	return context.WithValue(ctx, contextKey{}, a)
}

// FromContext returns the access stored by NewContext. ok is false when
// ctx carries none (a nil *Access stored explicitly also gives false):
// callers decide what that means, typically Full for in-process work that
// no client asked for.
func FromContext(ctx context.Context) (a *Access, ok bool) {
	a, _ = ctx.Value(contextKey{}).(*Access)
	return a, a != nil
}
