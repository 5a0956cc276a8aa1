// Package redislua is the comparison allot's bench measures its voucher
// paths against: the classic seckill service, a gin server whose reserve
// handler runs one Lua script in Redis (stock check, SISMEMBER of the user,
// DECR of the stock, SADD of the user) through go-redis, and answers in
// allot's shapes (201, 409 sold_out, 409 limit_exceeded) so that the same
// scenarios and load generator drive it. Redis runs with persistence off:
// an answer is not durable, where allot answers only after an fsync.
package redislua

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Outcome is what the script decided.
type Outcome int64

// Outcomes, as the script returns them.
const (
	Bought        Outcome = 1  // the stock was decremented and the user recorded
	SoldOut       Outcome = 0  // no stock left
	AlreadyBought Outcome = -1 // the user has one already
	NoSuchVoucher Outcome = -2 // the stock key does not exist
)

// reserveLua is the classic seckill script, atomic because Redis runs a
// script to its end before any other command. KEYS[1] is the voucher's
// stock, KEYS[2] the set of its buyers, ARGV[1] the user.
const reserveLua = `
local stock = tonumber(redis.call('GET', KEYS[1]))
if stock == nil then return -2 end
if stock <= 0 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`

var reserveScript = redis.NewScript(reserveLua)

// stockKey and buyersKey name a voucher's keys; the hash tag keeps both in
// one slot, as a Redis Cluster would need for the script.
func stockKey(voucher string) string  { return "seckill:{" + voucher + "}:stock" }
func buyersKey(voucher string) string { return "seckill:{" + voucher + "}:buyers" }

// Reserve runs the script for user on voucher (EVALSHA, loading the script
// on first use).
func Reserve(ctx context.Context, rdb redis.Scripter, voucher, user string) (Outcome, error) {
	n, err := reserveScript.Run(ctx, rdb, []string{stockKey(voucher), buyersKey(voucher)}, user).Int64()
	if err != nil {
		return 0, err
	}
	switch o := Outcome(n); o {
	case Bought, SoldOut, AlreadyBought, NoSuchVoucher:
		return o, nil
	}
	return 0, fmt.Errorf("redislua: the script returned %d", n)
}

// Seed sets voucher's stock to units and forgets its buyers.
func Seed(ctx context.Context, rdb redis.Cmdable, voucher string, units int64) error {
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, stockKey(voucher), units, 0)
		p.Del(ctx, buyersKey(voucher))
		return nil
	})
	return err
}

// State reads voucher's stock left and number of buyers, in one
// transaction.
func State(ctx context.Context, rdb redis.Cmdable, voucher string) (stock, buyers int64, err error) {
	var s *redis.StringCmd
	var b *redis.IntCmd
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		s = p.Get(ctx, stockKey(voucher))
		b = p.SCard(ctx, buyersKey(voucher))
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if stock, err = s.Int64(); err != nil {
		return 0, 0, err
	}
	return stock, b.Val(), nil
}
