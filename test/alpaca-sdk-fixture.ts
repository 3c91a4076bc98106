/**
 * What the tests of Alpaca's official SDKs share: a running papertrade (api, engine, a
 * resting-order watcher) over real HTTP and WebSocket, a funded user with its Alpaca key pair,
 * and scripted prices. The SDKs themselves are driven exactly as a bot would drive them; only
 * their base URL points here.
 */
import { adminPrice, apiUser, startTradingStack, type TestServer } from './harness.js';

export interface SdkUser {
  id: string;
  api_key: string;
  key_id: string;
  secret_key: string;
}

export interface SdkStack {
  api: TestServer;
  /** The http:// base URL and the ws:// URL of the trade_updates stream. */
  baseUrl: string;
  streamUrl: string;
  newUser(cash?: string): Promise<SdkUser>;
  price(ticker: string, value: string): Promise<void>;
  close(): Promise<void>;
}

export async function startSdkStack(): Promise<SdkStack> {
  const stack = await startTradingStack();
  const api = stack.api;
  await adminPrice(api, 'AAPL', '150.00');
  await adminPrice(api, 'MSFT', '400.00');
  return {
    api,
    baseUrl: api.url,
    streamUrl: `${api.url.replace(/^http/, 'ws')}/stream`,
    newUser: async (cash = '100000.00') => (await apiUser(api, cash)) as SdkUser,
    price: async (ticker, value) => {
      await adminPrice(api, ticker, value);
    },
    close: async () => {
      await stack.engine.stop();
      await api.server.close();
      await stack.ctx.close();
    },
  };
}

/** A trade update as both SDKs hand it to the bot: the event and the order's id and status. */
export interface SeenUpdate {
  event: string;
  orderId: string;
  status: string;
  price?: string | undefined;
  qty?: string | undefined;
  positionQty?: string | undefined;
  executionId?: string | undefined;
}
