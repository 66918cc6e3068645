//go:build !race

package mongo

const raceEnabled = false
