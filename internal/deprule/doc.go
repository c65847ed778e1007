// Package deprule holds no code: its test enforces the dependency rule of
// DESIGN.md ("an arrow means may import") on the whole module with
// `go list -deps -json`, so a wrong import fails CI instead of a review.
package deprule
