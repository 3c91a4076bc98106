/**
 * The Channel contract (src/infra/channel.ts), run with the same test bodies against
 * RedisChannel and MemoryChannel. Redis entries are skipped when the run has no Redis; each
 * Redis test owns a fresh key prefix (its channel name), and closes every connection it opened.
 * "Nothing arrives" is shown with a marker: publish it after the message that must not arrive,
 * wait for the marker, and look.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryChannel, RedisChannel, type Channel } from '../../src/infra/channel.js';
import { eventually, hasRedis } from '../harness.js';
import { memoryFixture, redisFixture, type Factory, type Fixture } from './fixtures.js';

type ChannelFixture = Fixture<Channel>;

const factories: Factory<ChannelFixture>[] = [
  { name: 'memory', needsRedis: false, create: async () => memoryFixture<Channel>(new MemoryChannel()) },
  {
    name: 'redis',
    needsRedis: true,
    create: async () =>
      redisFixture('channel', ({ redis, keys, connect }) => ({ impl: new RedisChannel(redis, keys.orderUpdatesChannel(), () => connect('contract-channel-sub')) })),
  },
];

async function listen(channel: Channel) {
  const messages: string[] = [];
  const unsubscribe = await channel.subscribe((m) => messages.push(m));
  return { messages, unsubscribe };
}

function heard(messages: string[], message: string, timeoutMs = 5_000) {
  return eventually(async () => (messages.includes(message) ? true : undefined), timeoutMs, 10);
}

describe.each(factories)('Channel contract: $name', (factory) => {
  describe.skipIf(factory.needsRedis && !hasRedis())(factory.name, () => {
    let fx: ChannelFixture;
    let channel: Channel;
    const subscriptions: (() => Promise<void>)[] = [];
    const subscribe = async () => {
      const sub = await listen(channel);
      subscriptions.push(sub.unsubscribe);
      return sub;
    };
    beforeEach(async () => {
      fx = await factory.create();
      channel = fx.impl;
    });
    afterEach(async () => {
      for (const u of subscriptions.splice(0)) await u();
      await fx?.cleanup();
    });

    it('delivers every message, in order, to every subscriber', async () => {
      const one = await subscribe();
      const two = await subscribe();
      const sent = Array.from({ length: 20 }, (_, i) => `message ${i}`);
      await channel.publish(sent.slice(0, 3));
      await channel.publish([sent[3]!]);
      await channel.publish(sent.slice(4));
      await heard(one.messages, 'message 19');
      await heard(two.messages, 'message 19');
      expect(one.messages).toEqual(sent);
      expect(two.messages).toEqual(sent);
    });

    it('delivers the same function subscribed twice twice: two subscriptions', async () => {
      const got: string[] = [];
      const onMessage = (m: string) => got.push(m);
      subscriptions.push(await channel.subscribe(onMessage));
      subscriptions.push(await channel.subscribe(onMessage));
      await channel.publish(['hello']);
      await eventually(async () => (got.length >= 2 ? true : undefined), 5_000, 10);
      expect(got).toEqual(['hello', 'hello']);
    });

    it('does not deliver to a subscriber what was published before it subscribed', async () => {
      const early = await subscribe();
      await channel.publish(['before']);
      await heard(early.messages, 'before');
      const late = await subscribe();
      await channel.publish(['after']);
      await heard(late.messages, 'after');
      await heard(early.messages, 'after');
      expect(late.messages).toEqual(['after']);
      expect(early.messages).toEqual(['before', 'after']);
    });

    it('stops delivery on unsubscribe', async () => {
      const gone = await listen(channel);
      const stays = await subscribe();
      await channel.publish(['first']);
      await heard(gone.messages, 'first');
      await gone.unsubscribe();
      await channel.publish(['second']);
      await channel.publish(['marker']);
      await heard(stays.messages, 'marker');
      expect(stays.messages).toEqual(['first', 'second', 'marker']);
      expect(gone.messages).toEqual(['first']);
    });

    it('publishes fine with no subscriber, and nothing empty', async () => {
      await expect(channel.publish(['nobody hears this'])).resolves.toBeUndefined();
      await expect(channel.publish([])).resolves.toBeUndefined();
      const sub = await subscribe();
      await channel.publish([]);
      await channel.publish(['marker']);
      await heard(sub.messages, 'marker');
      expect(sub.messages).toEqual(['marker']);
    });
  });
});
