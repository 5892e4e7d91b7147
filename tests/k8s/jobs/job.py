# The PyFlink job of the Kubernetes tests' Python cells (published as clickstream/0.4.0/job.py).
# A Table API batch job with a Python UDF (so the TaskManagers run PyFlink's Python workers), a
# print sink whose row appears in the TaskManager's log as "+I[clicks, HOME!, 3]", and a plan
# for a Kafka table that needs the connector jar fetched next to the job (in /opt/flink/lib).
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import udf


@udf(result_type=DataTypes.STRING())
def shout(page):
    return page.upper() + "!"


t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
t_env.create_temporary_function("shout", shout)
t_env.execute_sql(
    "CREATE TABLE clicks_out (page STRING, n BIGINT) WITH ("
    " 'connector' = 'kafka', 'topic' = 'clicks', 'format' = 'csv',"
    " 'properties.bootstrap.servers' = 'kafka.invalid:9092')"
)
plan = t_env.explain_sql(
    "INSERT INTO clicks_out SELECT page, COUNT(*) FROM (VALUES ('home'), ('home')) AS t(page) GROUP BY page"
)
print("pyflink-job: plan " + plan.replace("\n", " "), flush=True)
t_env.execute_sql("CREATE TABLE click_counts (tag STRING, page STRING, n BIGINT) WITH ('connector' = 'print')")
result = t_env.execute_sql(
    "INSERT INTO click_counts SELECT 'clicks', shout(page), COUNT(*)"
    " FROM (VALUES ('home'), ('home'), ('home'), ('cart')) AS t(page) GROUP BY page"
)
try:
    result.wait()
except Exception as e:  # a session cluster's web submission has no job result to wait for
    print("pyflink-job: submitted, not waiting: %s" % e, flush=True)
print("pyflink-job: done", flush=True)
