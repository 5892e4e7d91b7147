/*
 * The "UDF jar" of the Kubernetes tests' jar cells (string-udfs.jar): application-jar.yaml puts
 * it on the job's class path with pipeline.classpaths, and WordCount calls it on the TaskManagers.
 */
package artifactgateway.udfs;

import java.util.Locale;

public final class StringUdfs {
    private StringUdfs() {}

    /** Lower-cases a word and marks it, so the output shows the UDF ran: "the" -> "the~". */
    public static String normalize(String word) {
        return word.toLowerCase(Locale.ROOT) + "~";
    }
}
