//go:build race

package xeddsa

const raceEnabled = true
