package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// openMongo opens the MongoDB backend selected by MONGODB_URI.
func openMongo(ctx context.Context, cfg *config, log *slog.Logger) (fhirstore.Store, string, error) {
	return nil, "", errors.New("the MongoDB backend is not built yet")
}
