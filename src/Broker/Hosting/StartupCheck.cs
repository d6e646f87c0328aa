using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>
/// Every configuration problem at once, one line each naming its key, before the host starts: unknown keys, values
/// that do not convert to their setting's type, and what each section's validator refuses. The host's own start-up
/// validation stops at the first options type that fails, and a value that does not convert stops it with an
/// exception before any validator has run.
/// </summary>
internal static class StartupCheck
{
    public static List<string> FindProblems(IServiceProvider services, IConfiguration configuration)
    {
        var problems = ConfigurationKeyCheck.FindUnknownKeys(configuration);
        foreach (var (section, type) in ConfigurationKeyCheck.KnownSections)
        {
            var unconvertible = FindUnconvertibleValues(configuration, "Broker:" + section, type);
            if (unconvertible.Count > 0)
            {
                problems.AddRange(unconvertible);
                continue; // its validator cannot run on a section that does not bind
            }
            problems.AddRange(Validate(services, type));
        }
        return problems;
    }

    private static List<string> FindUnconvertibleValues(IConfiguration configuration, string sectionPath, Type options)
    {
        var problems = new List<string>();
        var section = configuration.GetSection(sectionPath);
        foreach (var property in options.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            string? text = section[property.Name];
            if (text is null)
            {
                continue;
            }
            try
            {
                section.GetValue(property.PropertyType, property.Name);
            }
            catch (InvalidOperationException)
            {
                problems.Add($"{sectionPath}:{property.Name} must be {Describe(property.PropertyType)} (was '{text}')");
            }
        }
        return problems;
    }

    private static IEnumerable<string> Validate(IServiceProvider services, Type options)
    {
        var accessor = services.GetService(typeof(IOptions<>).MakeGenericType(options));
        if (accessor is null)
        {
            return [];
        }
        try
        {
            _ = accessor.GetType().GetProperty(nameof(IOptions<object>.Value))!.GetValue(accessor);
            return [];
        }
        catch (TargetInvocationException ex) when (ex.InnerException is OptionsValidationException validation)
        {
            return validation.Failures;
        }
    }

    private static string Describe(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t switch
        {
            _ when t == typeof(bool) => "true or false",
            _ when t == typeof(int) || t == typeof(long) => "a whole number",
            _ when t == typeof(uint) => "a whole number from 0 to 4294967295",
            _ when t == typeof(double) => "a number",
            _ => "a " + t.Name,
        };
    }
}
