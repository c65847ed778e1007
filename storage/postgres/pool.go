package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pool is a minimal connection pool over pgx.Conn.
//
// It stands in for pgxpool, which needs github.com/jackc/puddle/v2 required
// in go.mod; once it is, Open can build a *pgxpool.Pool and withConn becomes
// pool.AcquireFunc with the same shape.
type pool struct {
	connect func(ctx context.Context) (*pgx.Conn, error)
	slots   chan struct{}  // one token per open connection, at most cap
	idle    chan *pgx.Conn // open connections not in use

	mu     sync.Mutex
	closed bool
}

func newPool(max int, connect func(ctx context.Context) (*pgx.Conn, error)) *pool {
	return &pool{
		connect: connect,
		slots:   make(chan struct{}, max),
		idle:    make(chan *pgx.Conn, max),
	}
}

// withConn runs fn on a connection held for its duration.
func (p *pool) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer p.release(conn)
	return fn(conn)
}

func (p *pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errPoolClosed
	}
	// An idle connection first, so the pool does not grow needlessly.
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case p.slots <- struct{}{}:
		c, err := p.connect(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release returns conn to the pool, or closes it when it is broken or left
// in a state the next user must not inherit (an open transaction, a busy
// connection after a cancelled query).
func (p *pool) release(conn *pgx.Conn) {
	p.mu.Lock()
	keep := !p.closed && !conn.IsClosed() && !conn.PgConn().IsBusy() && conn.PgConn().TxStatus() == 'I'
	if keep {
		p.idle <- conn // never blocks: idle holds at most cap(slots) connections
	}
	p.mu.Unlock()
	if !keep {
		closeConn(conn)
		<-p.slots
	}
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for {
		select {
		case c := <-p.idle:
			closeConn(c)
			<-p.slots
		default:
			return
		}
	}
}

var errPoolClosed = errors.New("postgres store is closed")

// closeConn ends a connection without letting a dead server stall the caller.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}
