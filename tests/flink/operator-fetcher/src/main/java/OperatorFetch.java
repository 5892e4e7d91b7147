/*
 * Test helper for artifact-gateway: downloads one artifact with the Flink Kubernetes Operator's
 * own HttpArtifactFetcher, the code path a FlinkSessionJob's http(s) jarURI goes through.
 *
 * Usage: OperatorFetch <uri> <targetDir> [<headers as k1:v1,k2:v2>]
 *   stdout: the absolute path of the saved file (exit 0)
 *   stderr: "<exception class>: <message>" (exit 1), or usage (exit 2)
 * TLS trust comes from the JVM flags -Djavax.net.ssl.trustStore=... -Djavax.net.ssl.trustStorePassword=...
 */

import org.apache.flink.configuration.Configuration;
import org.apache.flink.kubernetes.operator.artifact.HttpArtifactFetcher;

import java.io.File;

public final class OperatorFetch {

    /** The operator option that carries extra request headers, in its k1:v1,k2:v2 form. */
    static final String HEADER_OPTION = "kubernetes.operator.user.artifacts.http.header";

    private OperatorFetch() {}

    public static void main(String[] args) {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: OperatorFetch <uri> <targetDir> [<headers k1:v1,k2:v2>]");
            System.exit(2);
            return;
        }
        // Keep stdout for the result: library logging goes to stderr, warnings only,
        // unless the caller asked for more with -Dorg.slf4j.simpleLogger.defaultLogLevel=...
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");

        String uri = args[0];
        File targetDir = new File(args[1]);
        Configuration conf = new Configuration();
        if (args.length == 3 && !args[2].isEmpty()) {
            conf.setString(HEADER_OPTION, args[2]);
        }

        try {
            File saved = HttpArtifactFetcher.INSTANCE.fetch(uri, conf, targetDir);
            System.out.println(saved.getAbsolutePath());
            System.out.flush();
            System.exit(0);
        } catch (Throwable e) {
            System.err.println(e.getClass().getName() + ": " + e.getMessage());
            for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
                System.err.println("  caused by " + c.getClass().getName() + ": " + c.getMessage());
            }
            System.err.flush();
            System.exit(1);
        }
    }
}
