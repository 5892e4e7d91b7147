/*
 * The SQL runner jar of the Kubernetes tests' SQL cells (application-sql.yaml names this entry
 * class): runs the statements of the SQL script given as its only argument — a local path
 * (application mode: the init container fetched it) or an https:// URL of the gateway (session
 * mode, where the operator's jarURI can carry only this jar: the script is read with the token
 * and CA from --token-file/--ca-file). Statements are separated by ";" at the end of a line;
 * "--" comment lines are skipped. INSERT statements run to completion; EXPLAIN prints its plan.
 *
 * Compiled by tests/k8s/build-jobs.sh against Flink 1.18.1.
 */
package org.apache.flink.examples;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

public final class SqlRunner {
    private SqlRunner() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            throw new IllegalArgumentException("usage: SqlRunner SCRIPT [--token-file F --ca-file F]");
        }
        String script = read(args);
        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inBatchMode());
        for (String statement : statements(script)) {
            System.out.println("sql-runner: executing " + statement.split("\n")[0]);
            TableResult result = tEnv.executeSql(statement);
            if (statement.regionMatches(true, 0, "EXPLAIN", 0, 7)) {
                try (CloseableIterator<Row> rows = result.collect()) {
                    while (rows.hasNext()) {
                        System.out.println("sql-runner: plan " + rows.next().getField(0));
                    }
                }
            } else if (result.getJobClient().isPresent()) {
                // Application mode waits for the job; a session cluster's web submission cannot
                // (its job client has no result), and the operator watches the job instead.
                try {
                    result.await();
                } catch (Exception e) {
                    System.out.println("sql-runner: submitted " + result.getJobClient().get().getJobID()
                            + " (not waiting: " + e.getMessage() + ")");
                }
            }
        }
        System.out.println("sql-runner: done");
    }

    static String read(String[] args) throws Exception {
        return GatewayFiles.read(args);
    }

    static List<String> statements(String script) {
        List<String> out = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : script.split("\n")) {
            String trimmed = line.trim();
            if (trimmed.isEmpty() || trimmed.startsWith("--")) {
                continue;
            }
            current.append(line).append('\n');
            if (trimmed.endsWith(";")) {
                String s = current.toString().trim();
                out.add(s.substring(0, s.length() - 1));
                current.setLength(0);
            }
        }
        if (current.toString().trim().length() > 0) {
            out.add(current.toString().trim());
        }
        return out;
    }
}
