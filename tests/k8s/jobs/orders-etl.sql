-- The SQL script of the Kubernetes tests' SQL cells (published as orders-etl.sql).
-- A bounded source, an aggregation and a print sink: each result row appears in the TaskManager's
-- log as "+I[order-totals, <customer>, <total>]".
CREATE TABLE orders (customer STRING, amount INT) WITH (
  'connector' = 'datagen', 'number-of-rows' = '40',
  'fields.customer.kind' = 'random', 'fields.customer.length' = '1',
  'fields.amount.kind' = 'sequence', 'fields.amount.start' = '1', 'fields.amount.end' = '40'
);
CREATE TABLE order_totals (tag STRING, customer STRING, total INT) WITH ('connector' = 'print');
-- The Kafka connector fetched next to the script must be loadable by Flink (factory discovery):
-- planning an INSERT into a Kafka table needs no broker but fails without the connector jar.
CREATE TABLE orders_out (customer STRING, total INT) WITH (
  'connector' = 'kafka', 'topic' = 'order-totals', 'properties.bootstrap.servers' = 'kafka.invalid:9092',
  'format' = 'csv'
);
EXPLAIN PLAN FOR INSERT INTO orders_out SELECT customer, SUM(amount) FROM orders GROUP BY customer;
INSERT INTO order_totals SELECT 'order-totals', 'all', SUM(amount) FROM orders;
