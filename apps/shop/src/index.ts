// The shop's building blocks, for the one-process start (main.ts), chaos runs and benchmarks.
export { createGateway, type GatewayOptions, type GatewayCacheOptions } from './gateway/app.js';
export {
  ATTEMPT_TIMEOUT_MS,
  DEFAULT_PORTS,
  UPSTREAM_ENV,
  UPSTREAM_NAMES,
  upstreamPolicies,
  type UpstreamName,
} from './gateway/upstreams.js';
export type { OverviewInput, OverviewLine, OverviewOrder } from './gateway/overview.js';
export { createUsersService, type UserProfile } from './services/users/app.js';
export {
  createOrdersService,
  type Order,
  type OrderLine,
  type OrdersPage,
  type OrdersServiceOptions,
} from './services/orders/app.js';
export {
  createCatalogService,
  type CatalogServiceOptions,
  type Product,
  type ProductBatch,
} from './services/catalog/app.js';
export {
  createRecommendationsService,
  type Recommendation,
  type RecommendationList,
} from './services/recommendations/app.js';
export type { ServiceOptions } from './services/common/service-app.js';
export { DEFAULT_SEED_SIZES, type SeedSizes } from './services/common/seed-sizes.js';
export {
  createNotificationsService,
  CONFIRMATION_INBOX,
  NOTIFICATIONS_PORT,
  type ConfirmationConsumerOptions,
  type NotificationsApp,
  type NotificationsHandle,
  type NotificationsServiceOptions,
} from './services/notifications/app.js';
export {
  FakeMailProvider,
  FAULT_CODES,
  type ActiveFault,
  type FaultCode,
  type FaultRule,
  type MailProviderOptions,
  type MailReply,
  type OutgoingMail,
  type SentMail,
} from './services/notifications/mail-provider.js';
export {
  NOTIFICATIONS_QUEUE,
  ORDER_PLACED,
  orderEventsRelay,
  type OrderEventsRelay,
  type OrderEventsRelayOptions,
  type OrderPlaced,
} from './services/orders/events.js';
export type { PlaceOrderInput, PlacedOrder } from './services/orders/place.js';
